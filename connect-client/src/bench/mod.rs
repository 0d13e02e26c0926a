//! `connect-client bench`: how fast the server answers, measured by a load generator.
//!
//! It opens `--connections` HTTP/2 connections (calls in gRPC, gRPC-Web or
//! Connect, as `--protocol` says) spread over one thread per
//! core (each thread its own single-threaded runtime, so a call never leaves
//! its thread), runs `--concurrency` call loops spread over the connections,
//! records each call's latency in an HDR histogram and counts failures by
//! status code. Any failed call makes the exit code non-zero.

mod plan;
mod progress;
pub mod report;
pub mod runner;
pub mod settings;
mod wire;

pub use report::Report;
pub use settings::BenchSettings;

use crate::{error::ClientError, output::Output};

/// Runs the benchmark and prints its report to `output`.
pub(crate) async fn run(settings: &BenchSettings, output: &Output) -> Result<(), ClientError> {
    let report = runner::run_with_output(settings, output).await?;
    if settings.json {
        output.line(report.json());
    } else {
        output.text(&report.table());
    }
    match report.tally.failed() {
        0 => Ok(()),
        failed => Err(ClientError::CallsFailed(failed)),
    }
}
