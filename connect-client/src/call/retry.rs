//! Retrying idempotent calls with exponential backoff and jitter.
//!
//! Only calls that can be repeated without effect are retried: `UnaryRPC`,
//! and `ServerStreamRPC` until its first response (after that, a retry would
//! print responses twice). Client-streaming and bidi calls are never retried,
//! as their requests (stdin) cannot be replayed.
//!
//! A call is retried when it ends with `UNAVAILABLE` (the server refused or
//! was not reachable, or is shutting down), or when the connection broke
//! before any status arrived (a replica killed mid-call: tonic reports it as
//! `UNKNOWN`/`INTERNAL` from a local transport error, never from the server's
//! `grpc-status`). Both are safe because these RPCs are pure functions of
//! their request.
//!
//! The pause before retry `n` (from 1) is `min(max, initial * 2^(n-1))`
//! scaled by a random factor in `[0.8, 1.2]` (the jitter of gRPC's connection
//! backoff), so clients that failed together do not retry together. No retry
//! starts past the call's deadline.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};
use tonic::{Code, Status};

use crate::{error::is_transport_failure, output::Output};

/// How many times to retry, and how long to pause between retries.
#[derive(Debug, Clone)]
pub struct RetrySettings {
    /// How many times to retry an idempotent call that failed with UNAVAILABLE.
    pub retries: u32,
    /// Pause before the first retry; doubled for each next one (with ±20% jitter).
    pub backoff: Duration,
    /// Longest pause between two retries.
    pub max_backoff: Duration,
}

/// How a command retries its calls; clones share the retry counter.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    retries: u32,
    initial: Duration,
    max: Duration,
    retried: Arc<AtomicU64>,
    reprobe: Option<Arc<Notify>>,
    wait_for_ready: Option<Duration>,
    output: Output,
}

impl RetryPolicy {
    /// The policy of `settings`; `reprobe` (from a balanced channel) is nudged
    /// after each failure. Retries are reported on stderr.
    pub fn new(settings: &RetrySettings, reprobe: Option<Arc<Notify>>) -> Self {
        Self {
            retries: settings.retries,
            initial: settings.backoff,
            max: settings.max_backoff,
            retried: Arc::default(),
            reprobe,
            wait_for_ready: None,
            output: Output::stdio(),
        }
    }

    /// The same policy, reporting its retries to `output`.
    pub fn with_output(self, output: Output) -> Self {
        Self { output, ..self }
    }

    /// With `--wait-for-ready`: a call keeps retrying retryable failures for
    /// up to `budget` from its start, however many `--retries` allow, like
    /// gRPC's wait-for-ready calls that wait for the channel instead of failing fast.
    pub fn wait_for_ready(self, budget: Option<Duration>) -> Self {
        Self { wait_for_ready: budget, ..self }
    }

    /// How many retries calls under this policy have made so far.
    pub fn retried(&self) -> u64 {
        self.retried.load(Ordering::Relaxed)
    }

    /// The pause before retry `retry` (1 for the first), jitter included.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let doubled = self.initial.saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)));
        doubled.min(self.max).mul_f64(0.8 + 0.4 * fastrand::f64())
    }

    /// Runs `attempt` until it succeeds, fails in a way not worth retrying,
    /// runs out of retries, or the next retry would start after `deadline`.
    /// Each attempt is given the time left until `deadline`.
    pub async fn run<T, F, Fut>(&self, deadline: Option<Instant>, mut attempt: F) -> Result<T, Status>
    where
        F: FnMut(Option<Duration>) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let mut retry = 0;
        let waiting_until = self.wait_for_ready.map(|budget| Instant::now() + budget);
        loop {
            let left = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
            let status = match attempt(left).await {
                Ok(value) => return Ok(value),
                Err(status) => status,
            };
            if !is_retryable(&status) {
                return Err(status);
            }
            if let Some(reprobe) = &self.reprobe {
                reprobe.notify_one();
            }
            let pause = self.backoff(retry + 1);
            let resume = Instant::now() + pause;
            let waiting = waiting_until.is_some_and(|until| resume < until);
            if (retry >= self.retries && !waiting) || deadline.is_some_and(|deadline| resume >= deadline) {
                return Err(status);
            }
            retry += 1;
            self.output.retry(retry, pause, &status);
            self.retried.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(pause).await;
        }
    }
}

/// Whether a failed idempotent call may be tried again (see the module docs).
pub(crate) fn is_retryable(status: &Status) -> bool {
    status.code() == Code::Unavailable || is_transport_failure(status)
}
