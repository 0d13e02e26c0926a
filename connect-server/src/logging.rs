//! Log output: `tracing` to stdout, filtered by `RUST_LOG` (default `info`),
//! as human-readable text or one JSON object per line (`--log-format json`).
//!
//! Lines are written by a background thread (`tracing-appender`), so a call's
//! access-log line costs its formatting but no write system call on the
//! serving threads.

use clap::ValueEnum;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Installs the global subscriber; call once, at the start of `main`, and keep
/// the guard until the end: dropping it flushes the lines still queued.
#[must_use = "dropping the guard stops the log writer"]
pub fn init(format: LogFormat) -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a terminal: escape codes in log files help nobody.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    // Not lossy: when stdout cannot keep up, callers wait rather than lines vanish.
    let (writer, guard) = NonBlockingBuilder::default().lossy(false).finish(std::io::stdout());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(writer);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    guard
}
