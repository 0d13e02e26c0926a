//! Log output: `tracing` events to stdout, filtered by `RUST_LOG` (default
//! `info`), as human-readable text or one JSON object per line
//! (`--log-format json`), in the layout of tracing-subscriber's `fmt`.
//!
//! The server logs a line per call, so the path of a line is built for that
//! rate: `format` writes it without allocating into a per-thread buffer and
//! `sink` writes the buffers to stdout in batches from a background thread
//! (every 50 ms, or sooner when they fill). Any other line (startup, periodic
//! summaries, warnings) first writes out everything logged before it, so the
//! log reads in order across threads; access lines of different threads are
//! ordered by batch, and each carries its own timestamp. No colours: lines look
//! the same on a terminal and in a file.

mod format;
mod sink;

use std::cell::RefCell;

use clap::ValueEnum;
use tracing::{Event, Subscriber};
use tracing_subscriber::{EnvFilter, Layer, layer::Context, prelude::*};

use super::ACCESS_LOG_TARGET;
use sink::Sink;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Keeps the log writer running; dropping it writes out the lines still buffered.
#[derive(Debug)]
#[must_use = "dropping the guard writes out the log and stops batching"]
pub struct LogGuard(());

impl Drop for LogGuard {
    fn drop(&mut self) {
        flush();
    }
}

/// Installs the global subscriber and starts the writer thread; call once, at
/// the start of `main`, and keep the guard until the end.
pub fn init(format: LogFormat) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::registry().with(filter).with(LineLayer::new(format)).init();
    if let Err(error) = Sink::global().start_writer() {
        // Lines are still written: each non-access line flushes all before it.
        tracing::warn!(%error, "cannot start the log writer thread; access lines are written with other lines");
    }
    LogGuard(())
}

/// Writes out every buffered line now (before `process::exit`, for example).
pub fn flush() {
    Sink::global().flush();
}

/// The layer formatting every event as one line into the batched sink.
#[derive(Debug, Clone, Copy)]
pub struct LineLayer {
    format: LogFormat,
    /// Formats but writes nothing: for measuring what a line costs.
    discard: bool,
}

impl LineLayer {
    /// Lines in `format`, written to stdout.
    pub fn new(format: LogFormat) -> Self {
        Self { format, discard: false }
    }

    /// Lines in `format`, formatted and then dropped (for benchmarks).
    pub fn discarding(format: LogFormat) -> Self {
        Self { format, discard: true }
    }
}

impl<S: Subscriber> Layer<S> for LineLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        thread_local! {
            /// Reused for every line of this thread: formatting allocates nothing.
            static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        }
        LINE.with(|line| {
            // A line logged while formatting another (a `Debug` impl that logs) gets its own buffer.
            let mut owned = Vec::new();
            let mut borrowed = line.try_borrow_mut();
            let line = borrowed.as_deref_mut().unwrap_or(&mut owned);
            line.clear();
            format::write_event(self.format, event, line);
            if self.discard {
                return;
            }
            let sink = Sink::global();
            if event.metadata().target() == ACCESS_LOG_TARGET {
                sink.append(line);
            } else {
                // Rare lines come after everything logged before them, on any thread.
                sink.write_after_buffered(line);
            }
        });
    }
}
