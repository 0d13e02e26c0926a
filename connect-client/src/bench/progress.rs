//! The live progress bar, drawn on stderr only when it is a terminal.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use indicatif::{ProgressBar, ProgressStyle};

use crate::output::Output;

/// How often the bar is redrawn.
const TICK: Duration = Duration::from_millis(200);

/// What the bar measures progress against.
#[derive(Debug, Clone, Copy)]
pub(super) enum Goal {
    /// A run of this long in all (warm-up included).
    Time(Duration),
    /// This many calls in all (warm-up excluded).
    Calls(u64),
}

/// Measured calls completed (warm-up excluded), one counter per load thread so
/// threads never share a cache line.
pub(super) type Counters = Arc<[Arc<AtomicU64>]>;

/// Redraws a bar until dropped (the caller selects it against the run); does
/// nothing but wait when stderr is not a terminal, so pipes and CI logs stay clean.
pub(super) async fn show(goal: Goal, counters: Counters, output: &Output) {
    if !output.shows_progress() {
        return std::future::pending().await;
    }
    let (length, template) = match goal {
        Goal::Time(total) => (total.as_millis() as u64, "{spinner} [{elapsed_precise}] {wide_bar} {msg}"),
        Goal::Calls(total) => (total, "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}"),
    };
    let bar = ProgressBar::new(length);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    let started = Instant::now();
    let mut ticker = tokio::time::interval(TICK);
    let mut last = (started, 0u64);
    loop {
        ticker.tick().await;
        let now = Instant::now();
        let done: u64 = counters.iter().map(|counter| counter.load(Ordering::Relaxed)).sum();
        let rate = (done - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-9);
        last = (now, done);
        bar.set_position(match goal {
            Goal::Time(_) => now.duration_since(started).as_millis() as u64,
            Goal::Calls(_) => done,
        });
        bar.set_message(format!("{done} calls measured, {rate:.0}/s"));
    }
}

/// A drop guard that clears the bar line, so the report starts on a clean line.
#[derive(Debug)]
pub(super) struct ClearOnDrop<'a>(pub(super) &'a Output);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.clear_progress();
    }
}
