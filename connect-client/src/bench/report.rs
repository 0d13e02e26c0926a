//! What a benchmark run measured: per-thread tallies merged into one
//! [`Report`], printed as a table or as one JSON object.

use std::{collections::BTreeMap, fmt::Write as _, time::Duration};

use hdrhistogram::Histogram;
use serde_json::json;

use connect_proto::RpcKind;

/// Highest latency the histogram holds, in microseconds (one hour); longer calls are clamped.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// The percentiles every report shows, with their labels.
const PERCENTILES: [(&str, f64); 4] = [("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99.9", 99.9)];

/// Outcomes counted by one thread (or merged from all).
#[derive(Debug, Clone)]
pub struct Tally {
    /// Latency of each successful call, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Calls that ended with OK.
    pub ok: u64,
    /// Messages carried by the successful calls (responses received, or requests sent for client-stream).
    pub messages: u64,
    /// Failed calls by status code name.
    pub errors: BTreeMap<&'static str, u64>,
    /// Call loops that stopped early because the server closed their connection
    /// and no new one served a call (counted in the warm-up too: the lost load
    /// is missing from the figures).
    pub loops_stopped: u64,
    /// New connections made for ones the server closed during the run.
    pub reconnects: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("constant histogram bounds are valid"),
            ok: 0,
            messages: 0,
            errors: BTreeMap::new(),
            loops_stopped: 0,
            reconnects: 0,
        }
    }
}

impl Tally {
    /// Records one successful call that took `latency` and carried `messages`.
    pub fn record_ok(&mut self, latency: Duration, messages: u64) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(MAX_LATENCY_US);
        self.latency_us.saturating_record(micros.clamp(1, MAX_LATENCY_US));
        self.ok += 1;
        self.messages += messages;
    }

    /// Records one call that failed with the status code named `code`.
    pub fn record_error(&mut self, code: &'static str) {
        *self.errors.entry(code).or_default() += 1;
    }

    /// Adds `other`'s counts to this one.
    pub fn merge(&mut self, other: &Self) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency_us.add(&other.latency_us);
        self.ok += other.ok;
        self.messages += other.messages;
        self.loops_stopped += other.loops_stopped;
        self.reconnects += other.reconnects;
        for (code, count) in &other.errors {
            *self.errors.entry(code).or_default() += count;
        }
    }

    /// All failed calls.
    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// The result of a run, or of one step of a schedule.
#[derive(Debug, Clone)]
pub struct Report {
    /// The kind of the method called.
    pub rpc: RpcKind,
    /// The method called: the ConnectService RPC's name, or `Service/Method` for `--call`.
    pub method: String,
    /// The calls per second aimed at; none: as fast as the server answers.
    pub offered_rate: Option<f64>,
    /// The servers' addresses, comma-separated.
    pub addr: String,
    /// Connections used.
    pub connections: usize,
    /// Calls in flight at once.
    pub concurrency: usize,
    /// Time measured (after the warm-up) until the last counted call ended.
    pub elapsed: Duration,
    /// The merged counts.
    pub tally: Tally,
}

impl Report {
    /// Successful calls per second.
    pub fn calls_per_sec(&self) -> f64 {
        per_sec(self.tally.ok, self.elapsed)
    }

    /// Messages per second carried by successful calls.
    pub fn messages_per_sec(&self) -> f64 {
        per_sec(self.tally.messages, self.elapsed)
    }

    /// The latency at `percentile`, in microseconds.
    fn latency_at(&self, percentile: f64) -> u64 {
        self.tally.latency_us.value_at_percentile(percentile)
    }

    /// The human-readable summary.
    pub fn table(&self) -> String {
        let tally = &self.tally;
        let mut out = String::new();
        let _ = writeln!(out, "{} against {}", self.method, self.addr);
        let _ = writeln!(
            out,
            "  {} connection(s), concurrency {}, measured {:.2}s",
            self.connections,
            self.concurrency,
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(out, "  calls       {} ok, {} failed", tally.ok, tally.failed());
        let _ = writeln!(out, "  calls/s     {:.1}", self.calls_per_sec());
        if self.rpc.is_stream() {
            let _ = writeln!(out, "  messages/s  {:.1}", self.messages_per_sec());
        }
        let _ = write!(out, "  latency    ");
        for (label, _) in PERCENTILES {
            let _ = write!(out, " {label:>9}");
        }
        let _ = writeln!(out, " {:>9} {:>9}", "max", "mean");
        let _ = write!(out, "  (ms)       ");
        for (_, percentile) in PERCENTILES {
            let _ = write!(out, " {:>9}", millis(self.latency_at(percentile)));
        }
        let _ = writeln!(
            out,
            " {:>9} {:>9}",
            millis(tally.latency_us.max()),
            format!("{:.3}", tally.latency_us.mean() / 1000.0)
        );
        for (code, count) in &tally.errors {
            let _ = writeln!(out, "  error       {code}: {count}");
        }
        if tally.reconnects > 0 {
            let _ = writeln!(out, "  reconnected {} times: the server closed connections", tally.reconnects);
        }
        if tally.loops_stopped > 0 {
            let _ = writeln!(
                out,
                "  stopped     {} of {} call loops: the server closed their connection and served no call on a new one",
                tally.loops_stopped, self.concurrency
            );
        }
        out
    }

    /// The summary as one JSON object (latencies in microseconds).
    pub fn json(&self) -> serde_json::Value {
        let histogram = &self.tally.latency_us;
        let mut latency: serde_json::Map<String, serde_json::Value> = PERCENTILES
            .iter()
            .map(|(label, percentile)| (label.to_string(), json!(self.latency_at(*percentile))))
            .collect();
        latency.insert("max".into(), json!(histogram.max()));
        latency.insert("mean".into(), json!(histogram.mean()));
        json!({
            "rpc": self.method,
            "addr": self.addr,
            "connections": self.connections,
            "concurrency": self.concurrency,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "ok": self.tally.ok,
            "failed": self.tally.failed(),
            "errors": self.tally.errors,
            "loops_stopped": self.tally.loops_stopped,
            "reconnects": self.tally.reconnects,
            "messages": self.tally.messages,
            "calls_per_sec": self.calls_per_sec(),
            "messages_per_sec": self.messages_per_sec(),
            "latency_us": latency,
        })
    }
}

/// The CSV header line of [`csv`].
pub const CSV_HEADER: &str =
    "step,offered_rate,concurrency,elapsed_s,ok,failed,calls_per_sec,p50_us,p99_us,p99.9_us,errors";

/// The percentiles of the per-step rows.
const STEP_PERCENTILES: [(&str, f64); 3] = [("p50", 50.0), ("p99", 99.0), ("p99.9", 99.9)];

/// The failures of `tally` as `CODE=n` joined by `;` (empty when none).
fn errors_cell(tally: &Tally) -> String {
    tally.errors.iter().map(|(code, count)| format!("{code}={count}")).collect::<Vec<_>>().join(";")
}

/// The cells of one step's row, in [`CSV_HEADER`]'s order: for CSV
/// (`human` false: an unlimited rate empty, latencies in microseconds), or
/// for the table (`max`, milliseconds, `-` for no errors).
fn cells(index: usize, step: &Report, human: bool) -> Vec<String> {
    let rate = match (step.offered_rate, human) {
        (Some(rate), true) => format!("{rate:.1}"),
        (Some(rate), false) => rate.to_string(),
        (None, true) => "max".to_owned(),
        (None, false) => String::new(),
    };
    let mut cells = vec![
        (index + 1).to_string(),
        rate,
        step.concurrency.to_string(),
        if human {
            format!("{:.2}", step.elapsed.as_secs_f64())
        } else {
            format!("{:.3}", step.elapsed.as_secs_f64())
        },
        step.tally.ok.to_string(),
        step.tally.failed().to_string(),
        format!("{:.1}", step.calls_per_sec()),
    ];
    for (_, percentile) in STEP_PERCENTILES {
        let micros = step.latency_at(percentile);
        cells.push(if human { millis(micros) } else { micros.to_string() });
    }
    let errors = errors_cell(&step.tally);
    cells.push(if human && errors.is_empty() { "-".to_owned() } else { errors });
    cells
}

/// The steps as CSV: [`CSV_HEADER`], then one line per step (numbered from
/// 1; latencies in microseconds; an unlimited rate left empty).
pub fn csv(steps: &[Report]) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    for (index, step) in steps.iter().enumerate() {
        let _ = writeln!(out, "{}", cells(index, step, false).join(","));
    }
    out
}

/// The steps as one JSON object: the method, the address and `steps`, each
/// step as [`Report::json`] with its number (from 1) and its offered rate.
pub fn steps_json(steps: &[Report]) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = steps
        .iter()
        .enumerate()
        .map(|(index, step)| {
            let mut row = step.json();
            if let Some(row) = row.as_object_mut() {
                row.insert("step".into(), json!(index + 1));
                row.insert("offered_rate".into(), json!(step.offered_rate));
            }
            row
        })
        .collect();
    let first = steps.first();
    json!({
        "rpc": first.map(|step| step.method.clone()),
        "addr": first.map(|step| step.addr.clone()),
        "steps": rows,
    })
}

/// The table's column titles and widths; the errors come last, unpadded.
const TABLE_COLUMNS: [(&str, usize); 10] = [
    ("step", 4),
    ("rate/s", 10),
    ("conc", 6),
    ("seconds", 8),
    ("ok", 9),
    ("failed", 7),
    ("calls/s", 10),
    ("p50 ms", 9),
    ("p99 ms", 9),
    ("p99.9 ms", 9),
];

/// One table line: each cell right-aligned in its column, the errors after.
fn table_line(cells: &[String]) -> String {
    let mut line = String::from(" ");
    for (cell, (_, width)) in cells.iter().zip(TABLE_COLUMNS) {
        let _ = write!(line, " {cell:>width$}");
    }
    if let Some(errors) = cells.get(TABLE_COLUMNS.len()) {
        let _ = write!(line, "  {errors}");
    }
    line
}

/// The steps as a table for people, one row per step.
pub fn steps_table(steps: &[Report]) -> String {
    let mut out = String::new();
    if let Some(first) = steps.first() {
        let _ = writeln!(out, "{} against {}, {} step(s)", first.method, first.addr, steps.len());
    }
    let mut titles: Vec<String> = TABLE_COLUMNS.iter().map(|(title, _)| (*title).to_owned()).collect();
    titles.push("errors".into());
    let _ = writeln!(out, "{}", table_line(&titles));
    for (index, step) in steps.iter().enumerate() {
        let _ = writeln!(out, "{}", table_line(&cells(index, step, true)));
    }
    out
}

fn per_sec(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

/// Microseconds shown as milliseconds with three decimals.
fn millis(micros: u64) -> String {
    format!("{}.{:03}", micros / 1000, micros % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(tally: Tally) -> Report {
        Report {
            rpc: RpcKind::ServerStream,
            method: RpcKind::ServerStream.method().into(),
            offered_rate: Some(100.0),
            addr: "http://127.0.0.1:1".into(),
            connections: 2,
            concurrency: 8,
            elapsed: Duration::from_secs(2),
            tally,
        }
    }

    #[test]
    fn merging_adds_counts_and_latencies() {
        let mut a = Tally::default();
        a.record_ok(Duration::from_micros(100), 10);
        a.record_error("UNAVAILABLE");
        let mut b = Tally::default();
        b.record_ok(Duration::from_micros(300), 10);
        b.record_error("UNAVAILABLE");
        b.record_error("INTERNAL");
        a.merge(&b);
        assert_eq!((a.ok, a.messages, a.failed()), (2, 20, 3));
        assert_eq!(a.errors.get("UNAVAILABLE"), Some(&2));
        assert_eq!(a.errors.get("INTERNAL"), Some(&1));
        assert_eq!(a.latency_us.max(), 300);
    }

    #[test]
    fn json_has_rates_errors_and_percentiles() {
        let mut tally = Tally::default();
        for micros in 1..=1000 {
            tally.record_ok(Duration::from_micros(micros), 10);
        }
        tally.record_error("DEADLINE_EXCEEDED");
        let json = report(tally).json();
        assert_eq!(json["rpc"], "ServerStreamRPC");
        assert_eq!(json["ok"], 1000);
        assert_eq!(json["failed"], 1);
        assert_eq!(json["errors"]["DEADLINE_EXCEEDED"], 1);
        assert_eq!(json["calls_per_sec"], 500.0);
        assert_eq!(json["messages_per_sec"], 5000.0);
        assert_eq!(json["latency_us"]["p50"], 500);
        assert_eq!(json["latency_us"]["p99"], 990);
        assert_eq!(json["latency_us"]["max"], 1000);
    }

    #[test]
    fn table_shows_rates_latencies_and_errors() {
        let mut tally = Tally::default();
        tally.record_ok(Duration::from_micros(1500), 10);
        tally.record_error("UNAVAILABLE");
        let table = report(tally).table();
        assert!(table.contains("calls       1 ok, 1 failed\n"), "{table}");
        assert!(table.contains("calls/s     0.5\n"), "{table}");
        assert!(table.contains("messages/s  5.0\n"), "{table}");
        assert!(table.contains("error       UNAVAILABLE: 1\n"), "{table}");
        assert!(table.contains("1.500"), "{table}");
    }

    #[test]
    fn csv_and_step_rows_carry_rates_latencies_and_errors() {
        let mut tally = Tally::default();
        for micros in 1..=1000 {
            tally.record_ok(Duration::from_micros(micros), 10);
        }
        tally.record_error("UNAVAILABLE");
        tally.record_error("INTERNAL");
        let mut unlimited = report(Tally::default());
        unlimited.offered_rate = None;
        let steps = [report(tally), unlimited];
        assert_eq!(
            csv(&steps),
            format!(
                "{CSV_HEADER}\n1,100,8,2.000,1000,2,500.0,500,990,1000,INTERNAL=1;UNAVAILABLE=1\n2,,8,2.000,0,0,0.0,0,0,0,\n"
            )
        );
        let json = steps_json(&steps);
        assert_eq!(json["steps"][0]["step"], 1);
        assert_eq!(json["steps"][0]["offered_rate"], 100.0);
        assert_eq!(json["steps"][1]["offered_rate"], serde_json::Value::Null);
        let table = steps_table(&steps);
        assert_eq!(table.lines().count(), 4, "{table}");
        assert!(table.lines().nth(2).unwrap().ends_with("  INTERNAL=1;UNAVAILABLE=1"), "{table}");
        assert!(table.lines().nth(3).unwrap().contains(" max "), "{table}");
    }
}
