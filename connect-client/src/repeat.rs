//! `--repeat N`: the unary call made N times over one channel, and `--tally
//! HEADER`: how many of those calls each value of a response header got.
//!
//! With `--tally x-served-by` this shows how a balancer (nginx, HAProxy, or
//! the client's own balanced channel) spread the calls of one client
//! connection over the replicas.

use std::{collections::BTreeMap, time::Duration};

use crate::connection::Client;
use clap::Args;
use tokio::time::Instant;

use crate::{
    commands::{request, with_deadline},
    exit::ClientError,
    retry::RetryPolicy,
};

/// What the tally shows for a response without the header.
pub const NO_HEADER: &str = "(none)";

/// Flags for repeating the unary call.
#[derive(Debug, Clone, Args)]
pub struct RepeatArgs {
    /// Make the unary call this many times over one channel, one after another, printing a summary instead of each response.
    #[arg(long, env = "CONNECT_REPEAT", default_value_t = 1, global = true,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,

    /// Count the unary calls per value of this response header (e.g. `x-served-by`) and print the table.
    #[arg(long, env = "CONNECT_TALLY", global = true)]
    pub tally: Option<String>,
}

impl RepeatArgs {
    /// Whether the unary command should run in repeat mode.
    pub fn active(&self) -> bool {
        self.repeat > 1 || self.tally.is_some()
    }
}

/// What a run of repeated calls gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Calls that succeeded, by value of the tallied header (all under [`NO_HEADER`] without `--tally`).
    pub tally: BTreeMap<String, u64>,
    /// Calls that failed after their retries.
    pub failed: u64,
    /// Retries made in all.
    pub retries: u64,
}

impl Outcome {
    /// Calls that succeeded.
    pub fn ok(&self) -> u64 {
        self.tally.values().sum()
    }
}

/// Makes `args.repeat` unary calls with `data`, each with its own `timeout`;
/// prints the tally and a summary line, and fails with the last error if any call failed.
pub async fn unary(
    client: &Client,
    timeout: Option<Duration>,
    policy: &RetryPolicy,
    data: &str,
    args: &RepeatArgs,
) -> Result<Outcome, ClientError> {
    let mut outcome = Outcome::default();
    let mut last_error = None;
    for _ in 0..args.repeat {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        let result = policy
            .run(deadline, |left| {
                let mut client = client.clone();
                let call = with_deadline(request(data.to_owned()), left);
                async move { client.unary_rpc(call).await }
            })
            .await;
        match result {
            Ok(response) => {
                let value = args
                    .tally
                    .as_deref()
                    .and_then(|key| response.metadata().get(key))
                    .map_or(NO_HEADER.to_owned(), |value| {
                        String::from_utf8_lossy(value.as_bytes()).into_owned()
                    });
                *outcome.tally.entry(value).or_default() += 1;
            }
            Err(status) => {
                outcome.failed += 1;
                last_error = Some(status);
            }
        }
    }
    outcome.retries = policy.retried();
    print_outcome(&outcome, args);
    match last_error {
        Some(status) => Err(status.into()),
        None => Ok(outcome),
    }
}

/// Prints the table (`{value} {calls} {share}%`, one line per value) and the summary line
/// `calls: N ok: N failed: N retries: N`.
fn print_outcome(outcome: &Outcome, args: &RepeatArgs) {
    let ok = outcome.ok();
    if let Some(key) = &args.tally {
        let width = outcome.tally.keys().map(String::len).chain([key.len()]).max().unwrap_or(0);
        println!("{key:<width$}  {:>7}  {:>6}", "calls", "share");
        for (value, calls) in &outcome.tally {
            // Shares are of the successful calls; precision loss is irrelevant at these counts.
            #[allow(clippy::cast_precision_loss)]
            let share = 100.0 * *calls as f64 / ok.max(1) as f64;
            println!("{value:<width$}  {calls:>7}  {share:>5.1}%");
        }
    }
    println!("calls: {} ok: {ok} failed: {} retries: {}", args.repeat, outcome.failed, outcome.retries);
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::Cli;

    #[test]
    fn repeat_must_be_at_least_one() {
        let error = Cli::try_parse_from(["connect-client", "--repeat", "0", "unary"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
        let cli = Cli::try_parse_from(["connect-client", "--repeat", "1", "unary"]).expect("1 is fine");
        assert!(!cli.repeat.active());
    }
}
