//! `connect-client bench`: a load generator for `ConnectService`.
//!
//! It opens `--connections` HTTP/2 connections spread over one thread per
//! core (each thread its own single-threaded runtime, so a call never leaves
//! its thread), runs `--concurrency` call loops spread over the connections,
//! records each call's latency in an HDR histogram and counts failures by
//! status code. Any failed call makes the exit code non-zero.

pub mod options;
pub mod progress;
pub mod report;
pub mod runner;
pub mod wire;

use std::time::Duration;

pub use options::{BenchOptions, Rpc};
pub use report::Report;

use crate::exit::ClientError;

/// Runs the benchmark against `addrs` and prints its report to stdout.
pub async fn run(
    addrs: &[String],
    connect_timeout: Duration,
    timeout: Option<Duration>,
    token: Option<&str>,
    options: BenchOptions,
) -> Result<(), ClientError> {
    let report = runner::run(addrs, connect_timeout, timeout, token, &options).await?;
    if options.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.table());
    }
    match report.tally.failed() {
        0 => Ok(()),
        failed => Err(ClientError::CallsFailed(failed)),
    }
}
