//! `--repeat N`: the unary call made N times over one channel, and `--tally
//! HEADER`: how many of those calls each value of a response header got.
//!
//! With `--tally x-served-by` this shows how a balancer (nginx, HAProxy, or
//! the client's own balanced channel) spread the calls of one client
//! connection over the replicas.

use std::{collections::BTreeMap, time::Duration};

use super::calls::retried_unary;
use crate::{
    call::{Client, retry::RetryPolicy},
    error::ClientError,
    output::Output,
};

/// What the tally shows for a response without the header.
pub const NO_HEADER: &str = "(none)";

/// How many calls to make and which response header to tally.
#[derive(Debug, Clone)]
pub struct RepeatSettings {
    /// How many unary calls to make, one after another.
    pub repeat: u32,
    /// The response header whose values are counted (e.g. `x-served-by`).
    pub tally: Option<String>,
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
/// prints the tally and a summary line to `output`, and fails with the last
/// error if any call failed.
pub async fn unary(
    client: &Client,
    timeout: Option<Duration>,
    policy: &RetryPolicy,
    data: &str,
    args: &RepeatSettings,
    output: &Output,
) -> Result<Outcome, ClientError> {
    let mut outcome = Outcome::default();
    let mut last_error = None;
    for _ in 0..args.repeat {
        match retried_unary(client, timeout, policy, data).await {
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
    print_outcome(&outcome, args, output);
    match last_error {
        Some(status) => Err(ClientError::from_call(status)),
        None => Ok(outcome),
    }
}

/// Prints the table (`{value} {calls} {share}%`, one line per value) and the summary line
/// `calls: N ok: N failed: N retries: N`.
fn print_outcome(outcome: &Outcome, args: &RepeatSettings, output: &Output) {
    let ok = outcome.ok();
    if let Some(key) = &args.tally {
        let width = outcome.tally.keys().map(String::len).chain([key.len()]).max().unwrap_or(0);
        output.line(format_args!("{key:<width$}  {:>7}  {:>6}", "calls", "share"));
        for (value, calls) in &outcome.tally {
            // Shares are of the successful calls; precision loss is irrelevant at these counts.
            #[allow(clippy::cast_precision_loss)]
            let share = 100.0 * *calls as f64 / ok.max(1) as f64;
            output.line(format_args!("{value:<width$}  {calls:>7}  {share:>5.1}%"));
        }
    }
    output.line(format_args!(
        "calls: {} ok: {ok} failed: {} retries: {}",
        args.repeat, outcome.failed, outcome.retries
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_each_value_its_calls_and_share() {
        let output = Output::capture();
        let outcome = Outcome { tally: [("a".into(), 3), ("bb".into(), 1)].into(), failed: 1, retries: 2 };
        print_outcome(&outcome, &RepeatSettings { repeat: 5, tally: Some("x-served-by".into()) }, &output);
        assert_eq!(
            output.stdout(),
            "x-served-by    calls   share\n\
             a                  3   75.0%\n\
             bb                 1   25.0%\n\
             calls: 5 ok: 4 failed: 1 retries: 2\n"
        );
    }
}
