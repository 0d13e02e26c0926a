//! One call in flight: started when the request arrives, finished exactly
//! once with its final code, which is counted and logged. A call dropped
//! before it has a code was reset by the client (`CANCELLED`), or ended at
//! its deadline (`DEADLINE_EXCEEDED`) when that has passed.

use std::{fmt, net::SocketAddr, sync::Arc};

use http::HeaderValue;
use tokio::time::Instant;
use tonic::Code;

use super::{codes, metrics::MethodMetrics};
use crate::stats::Stats;

/// The log target of the per-call lines, so `RUST_LOG=connect_server::access=off` silences just them.
pub const ACCESS_LOG_TARGET: &str = "connect_server::access";

/// What a call is, for its log line and metrics.
#[derive(Debug)]
pub(crate) enum Method {
    /// A method with metrics.
    Known(Arc<MethodMetrics>),
    /// Any other path; logged only.
    Unknown(http::Uri),
}

impl Method {
    fn path(&self) -> &str {
        match self {
            Self::Known(metrics) => metrics.known.path,
            Self::Unknown(uri) => uri.path(),
        }
    }
}

/// A call in flight; see the module docs.
#[derive(Debug)]
pub(crate) struct Call {
    method: Method,
    peer: Option<SocketAddr>,
    request_id: HeaderValue,
    started: Instant,
    deadline: Option<Instant>,
    stats: Arc<Stats>,
    done: bool,
}

impl Call {
    /// Starts a call, counting it as started.
    pub(crate) fn start(
        method: Method,
        peer: Option<SocketAddr>,
        request_id: HeaderValue,
        deadline: Option<Instant>,
        stats: Arc<Stats>,
    ) -> Self {
        if let Method::Known(metrics) = &method {
            metrics.started.inc();
        }
        Self { method, peer, request_id, started: Instant::now(), deadline, stats, done: false }
    }

    /// Counts `messages` more responses sent.
    pub(crate) fn sent(&self, messages: u64) {
        if let Method::Known(metrics) = &self.method {
            metrics.sent.inc_by(messages);
        }
    }

    /// The method's metrics, if it has any.
    pub(crate) fn metrics(&self) -> Option<&Arc<MethodMetrics>> {
        match &self.method {
            Method::Known(metrics) => Some(metrics),
            Method::Unknown(_) => None,
        }
    }

    /// The request id the response carries.
    pub(crate) fn request_id(&self) -> &HeaderValue {
        &self.request_id
    }

    /// Ends the call with `code`; later calls are ignored.
    pub(crate) fn finish(&mut self, code: Code) {
        if self.done {
            return;
        }
        self.done = true;
        let elapsed = self.started.elapsed();
        if let Method::Known(metrics) = &self.method {
            metrics.finished(code, elapsed.as_secs_f64());
        }
        match code {
            Code::Cancelled => self.stats.record_cancelled(),
            Code::DeadlineExceeded => self.stats.record_deadline_exceeded(),
            _ => {}
        }
        tracing::info!(
            target: ACCESS_LOG_TARGET,
            method = self.method.path(),
            peer = %Peer(self.peer),
            request_id = %String::from_utf8_lossy(self.request_id.as_bytes()),
            code = codes::canonical_name(code),
            // Whole microseconds, so the line reads `0.489`, not `0.48895000000000005`.
            duration_ms = elapsed.as_micros() as f64 / 1000.0,
            "rpc finished"
        );
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.done {
            let past_deadline = self.deadline.is_some_and(|at| Instant::now() >= at);
            self.finish(if past_deadline { Code::DeadlineExceeded } else { Code::Cancelled });
        }
    }
}

/// The peer address, or `-` when the transport has none.
struct Peer(Option<SocketAddr>);

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(addr) => addr.fmt(f),
            None => f.write_str("-"),
        }
    }
}
