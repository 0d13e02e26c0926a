//! `connect-client bench`: how fast the server answers, measured by a load generator.
//!
//! It opens `--connections` HTTP/2 connections (calls in gRPC, gRPC-Web or
//! Connect, as `--protocol` says) spread over one thread per
//! core (each thread its own single-threaded runtime, so a call never leaves
//! its thread), runs `--concurrency` call loops spread over the connections,
//! records each call's latency in an HDR histogram and counts failures by
//! status code. Any failed call makes the exit code non-zero.

mod connection;
mod payload;
mod plan;
mod progress;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod settings;
mod slot;
mod wire;

pub use report::Report;
pub use settings::{BenchCall, BenchSettings, OutputFormat};

use crate::{error::ClientError, output::Output};

/// Runs the benchmark (every step of its schedule) and prints its report to `output`.
pub(crate) async fn run(settings: &BenchSettings, output: &Output) -> Result<(), ClientError> {
    let reports = runner::run_steps_with_output(settings, output).await?;
    output.text(&render(&reports, settings.output, !settings.steps.is_empty()));
    match reports.iter().map(|report| report.tally.failed()).sum() {
        0 => Ok(()),
        failed => Err(ClientError::CallsFailed(failed)),
    }
}

/// What is printed for `reports` in `format`: a constant run (not
/// `scheduled`) keeps its one-run table and JSON object.
pub fn render(reports: &[Report], format: OutputFormat, scheduled: bool) -> String {
    match (format, reports) {
        (OutputFormat::Csv, _) => report::csv(reports),
        (OutputFormat::Table, [report]) if !scheduled => report.table(),
        (OutputFormat::Json, [report]) if !scheduled => format!("{}\n", report.json()),
        (OutputFormat::Table, _) => report::steps_table(reports),
        (OutputFormat::Json, _) => format!("{}\n", report::steps_json(reports)),
    }
}
