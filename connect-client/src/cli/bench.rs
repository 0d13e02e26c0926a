//! The flags of `connect-client bench`, and which global flags it honours.
//!
//! bench honours `-H` (sent on every call), `--token`, `--timeout`,
//! `--connect-timeout`, `--wait-for-ready` (each connection waits for the
//! server), `--ca`/`--cert`/`--key` for `https://` addresses and, with
//! `--call`, `--proto`/`--import-path`/`--protoset`; it refuses `--retries` and `--compress`, which it cannot honour
//! without changing what it measures, and `--http1` and `--codec json`: its
//! own wire path speaks gRPC, gRPC-Web and Connect with binary messages over HTTP/2.

use std::{num::NonZeroUsize, time::Duration};

use clap::{ArgGroup, Args};
use connect_proto::RpcKind;

use super::Cli;
use crate::{
    bench::{
        BenchCall, BenchSettings, OutputFormat,
        schedule::{self, DEFAULT_RAMP_STEPS, Shape, Varies},
    },
    channel::{Codec, TlsFiles},
    commands::dynamic::Input,
    error::ClientError,
    schema::SchemaSource,
};

/// Why bench refuses `--retries`.
pub(crate) const NO_RETRIES: &str =
    "bench does not retry calls: --retries would hide the failures it measures";

/// Why bench refuses `--http1` and `--codec json` (its own wire path speaks binary HTTP/2 only).
pub(crate) const NO_OTHER_PROTOCOL: &str =
    "bench sends binary messages over HTTP/2 only: --http1 and --codec json are for the other commands";

/// Why bench refuses `--proto`/`--protoset` without `--call`.
pub(crate) const NO_SCHEMA_WITHOUT_CALL: &str =
    "--proto and --protoset are for bench --call (the ConnectService RPCs of --rpc need no schema)";

/// Why bench refuses `--compress`.
pub(crate) const NO_COMPRESSION: &str =
    "bench sends and reads uncompressed messages only: --compress would not be honoured";

/// Load-generator settings; every flag can also be set by its environment variable.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("schedule").multiple(false)
    .args(["rate_step", "rate_ramp", "concurrency_step", "concurrency_ramp"])))]
pub struct BenchArgs {
    /// Which ConnectService RPC to call.
    #[arg(long, value_enum, env = "CONNECT_BENCH_RPC", default_value_t = RpcKind::Unary)]
    pub rpc: RpcKind,

    /// Any method of the server instead, as `SERVICE/METHOD` (the service fully qualified,
    /// e.g. `grpc.health.v1.Health/Check`), found through reflection or `--proto`/`--protoset`.
    #[arg(long, value_name = "SERVICE/METHOD", env = "CONNECT_BENCH_CALL", conflicts_with_all = ["rpc", "data_size"])]
    pub call: Option<String>,

    /// The request of `--call` as JSON, `@FILE` or `@-` (stdin); for a request stream a JSON
    /// array of messages, or one object sent `--count` times. Default: `{}`.
    #[arg(short = 'd', long = "data", value_name = "JSON|@FILE|@-", requires = "call")]
    pub data: Option<String>,

    /// HTTP/2 connections to open (over the `--addr` servers in turn); calls are spread evenly over them.
    #[arg(long, env = "CONNECT_BENCH_CONNECTIONS", default_value = "1")]
    pub connections: NonZeroUsize,

    /// Calls in flight at once, in all.
    #[arg(long, env = "CONNECT_BENCH_CONCURRENCY", default_value = "50")]
    pub concurrency: NonZeroUsize,

    /// How long to measure, after the warm-up (default 10s unless `--requests` is given).
    #[arg(long, env = "CONNECT_BENCH_DURATION", value_parser = humantime::parse_duration, conflicts_with = "requests")]
    pub duration: Option<Duration>,

    /// How many calls to measure, after the warm-up, instead of a duration.
    #[arg(long, env = "CONNECT_BENCH_REQUESTS")]
    pub requests: Option<u64>,

    /// Calls per second to aim at in all (e.g. `1000` or `1000/s`); unlimited when absent.
    /// A call that falls behind schedule counts its latency from when it was due,
    /// so a slow server cannot hide its queue.
    #[arg(long, env = "CONNECT_BENCH_RATE", value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Bytes of `request_data` in each request.
    #[arg(long, env = "CONNECT_BENCH_DATA_SIZE", default_value_t = 16)]
    pub data_size: usize,

    /// Messages per streaming call: responses asked for (server-stream), requests sent
    /// (client-stream, bidi); 0 means 10.
    #[arg(long, env = "CONNECT_BENCH_COUNT", default_value_t = 10)]
    pub count: u32,

    /// How long to run before measuring; calls started in the warm-up are not counted.
    #[arg(long, env = "CONNECT_BENCH_WARMUP", default_value = "0s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,

    /// Threads driving the connections, each with its own runtime (default: one per core, at most one per connection).
    #[arg(long, env = "CONNECT_BENCH_THREADS")]
    pub threads: Option<NonZeroUsize>,

    /// Steps of the call rate: START, START+STEP, ... up to MAX calls/s, each for DURATION
    /// (e.g. `100:100:500/5s`); one report row per step.
    #[arg(long, value_name = "START:STEP:MAX/DURATION", env = "CONNECT_BENCH_RATE_STEP",
          value_parser = schedule::parse_step, conflicts_with_all = ["rate", "duration", "requests"])]
    pub rate_step: Option<Shape>,

    /// A linear ramp of the call rate from FROM to TO calls/s over DURATION, in `--ramp-steps`
    /// equal steps (e.g. `100:1000/10s`); one report row per step.
    #[arg(long, value_name = "FROM:TO/DURATION", env = "CONNECT_BENCH_RATE_RAMP",
          value_parser = schedule::parse_ramp, conflicts_with_all = ["rate", "duration", "requests"])]
    pub rate_ramp: Option<Shape>,

    /// Steps of the concurrency, as `--rate-step` (e.g. `10:10:50/5s`), at `--rate` if given.
    #[arg(long, value_name = "START:STEP:MAX/DURATION", env = "CONNECT_BENCH_CONCURRENCY_STEP",
          value_parser = schedule::parse_step, conflicts_with_all = ["concurrency", "duration", "requests"])]
    pub concurrency_step: Option<Shape>,

    /// A linear ramp of the concurrency, as `--rate-ramp` (e.g. `1:64/8s`; each step rounded to a whole number), at `--rate` if given.
    #[arg(long, value_name = "FROM:TO/DURATION", env = "CONNECT_BENCH_CONCURRENCY_RAMP",
          value_parser = schedule::parse_ramp, conflicts_with_all = ["concurrency", "duration", "requests"])]
    pub concurrency_ramp: Option<Shape>,

    /// How many equal steps a ramp is cut into (the first at FROM, the last at TO).
    #[arg(long, env = "CONNECT_BENCH_RAMP_STEPS", default_value_t = DEFAULT_RAMP_STEPS,
          value_parser = parse_ramp_steps)]
    pub ramp_steps: usize,

    /// How to print the report: a table, one JSON object, or CSV (one line per step).
    #[arg(long, value_enum, env = "CONNECT_BENCH_OUTPUT", default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    /// The same as `--output json`.
    #[arg(long, env = "CONNECT_BENCH_JSON", conflicts_with = "output")]
    pub json: bool,
}

impl BenchArgs {
    /// The run these flags and the global ones in `cli` ask for.
    pub(super) fn settings(self, cli: &Cli) -> Result<BenchSettings, ClientError> {
        if cli.retry.retries > 0 {
            return Err(ClientError::Usage(NO_RETRIES.into()));
        }
        if cli.compress.is_some() {
            return Err(ClientError::Usage(NO_COMPRESSION.into()));
        }
        if cli.codec != Codec::Proto || cli.http1 {
            return Err(ClientError::Usage(NO_OTHER_PROTOCOL.into()));
        }
        let (varies, shape) =
            match (self.rate_step.or(self.rate_ramp), self.concurrency_step.or(self.concurrency_ramp)) {
                (Some(shape), _) => (Varies::Rate, Some(shape)),
                (None, shape) => (Varies::Concurrency, shape),
            };
        let steps = match shape {
            Some(shape) => shape
                .steps(varies, self.rate, self.concurrency.get(), self.ramp_steps, MIN_RATE)
                .map_err(ClientError::Usage)?,
            None => Vec::new(),
        };
        let call = match self.call {
            Some(method) => Some(BenchCall {
                method,
                input: self.data.as_deref().map(Input::parse),
                schema: cli.schema.clone().source()?,
            }),
            None if cli.schema.clone().source()? != SchemaSource::Reflection => {
                return Err(ClientError::Usage(NO_SCHEMA_WITHOUT_CALL.into()));
            }
            None => None,
        };
        Ok(BenchSettings {
            addrs: cli.addr.clone(),
            tls: TlsFiles { ca: cli.ca.clone(), cert: cli.cert.clone(), key: cli.key.clone() },
            connect_timeout: cli.connect_timeout,
            timeout: cli.timeout,
            wait_for_ready: cli.wait_for_ready(),
            token: cli.token.clone(),
            headers: cli.headers.clone(),
            rpc: self.rpc,
            call,
            protocol: cli.protocol,
            connections: self.connections,
            concurrency: self.concurrency,
            duration: self.duration,
            requests: self.requests,
            rate: self.rate,
            data_size: self.data_size,
            count: self.count,
            warmup: self.warmup,
            threads: self.threads,
            output: if self.json { OutputFormat::Json } else { self.output },
            steps,
        })
    }
}

/// The lowest `--rate`: one call every 1,000 s. Lower rates make intervals
/// beyond what a `Duration` holds, and no run is that long.
const MIN_RATE: f64 = 0.001;

/// Parses `--ramp-steps`: from 2 (a ramp has two ends) to [`schedule::MAX_STEPS`].
fn parse_ramp_steps(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(steps) if (2..=schedule::MAX_STEPS).contains(&steps) => Ok(steps),
        _ => Err(format!("a ramp takes from 2 to {} steps, not {text:?}", schedule::MAX_STEPS)),
    }
}

/// Parses `1000`, `1000/s` or `2.5/s` as calls per second.
fn parse_rate(text: &str) -> Result<f64, String> {
    let number = text.strip_suffix("/s").unwrap_or(text);
    match number.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate >= MIN_RATE => Ok(rate),
        _ => Err(format!(
            "rate must be a number of calls per second from {MIN_RATE}, like 1000/s, not {text:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn usage_error(args: &[&str]) -> String {
        let argv = ["connect-client"].iter().chain(args);
        let error = Cli::try_parse_from(argv).expect("valid flags").settings().expect_err("refused");
        assert_eq!(error.exit_code(), std::process::ExitCode::from(2));
        error.to_string()
    }

    #[test]
    fn bench_refuses_retries_and_compression() {
        assert_eq!(usage_error(&["--retries", "2", "bench"]), format!("error: {NO_RETRIES}"));
        assert_eq!(usage_error(&["bench", "--compress", "gzip"]), format!("error: {NO_COMPRESSION}"));
        assert_eq!(usage_error(&["--proto", "a.proto", "bench"]), format!("error: {NO_SCHEMA_WITHOUT_CALL}"));
        assert_eq!(
            usage_error(&["--protocol", "connect", "bench", "--http1"]),
            format!("error: {NO_OTHER_PROTOCOL}")
        );
        assert_eq!(
            usage_error(&["--protocol", "connect", "--codec", "json", "bench"]),
            format!("error: {NO_OTHER_PROTOCOL}")
        );
    }

    #[test]
    fn bench_takes_headers_and_wait_for_ready() {
        let argv = ["connect-client", "-H", "x-run: 7", "--wait-for-ready", "--timeout", "3s", "bench"];
        let settings = Cli::try_parse_from(argv).expect("valid").settings().expect("usable");
        let crate::commands::Action::Bench(bench) = settings.action else { panic!("not bench") };
        assert_eq!(bench.headers[0].name, "x-run");
        assert_eq!(bench.wait_for_ready, Some(Duration::from_secs(3)));
    }

    #[test]
    fn rate_accepts_a_plain_number_or_per_second() {
        assert_eq!(parse_rate("1000"), Ok(1000.0));
        assert_eq!(parse_rate("2.5/s"), Ok(2.5));
    }

    #[test]
    fn rate_rejects_zero_negative_tiny_and_words() {
        for bad in ["0", "-5/s", "fast", "10/m", "inf", "1e-300", "0.0009/s"] {
            assert!(parse_rate(bad).is_err(), "{bad} was accepted");
        }
    }
}
