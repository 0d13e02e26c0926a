//! One call in flight: started when the request arrives, finished exactly
//! once with its final code, which is counted and logged. A call dropped
//! before it has a code was reset by the client (`CANCELLED`), or ended at
//! its deadline (`DEADLINE_EXCEEDED`) when that has passed.

use std::{fmt, sync::Arc};

use http::HeaderValue;
use tokio::time::Instant;
use tonic::Code;

use connect_proto::codes;

use super::{
    metrics::{MethodMetrics, Metrics},
    stats::Stats,
    trace::{CallSpan, Tracing},
};
use crate::{transport::ConnectionCalls, web::Protocol};

/// The log target of the per-call lines, so `RUST_LOG=connect_server::access=off` silences just them.
pub(crate) const ACCESS_LOG_TARGET: &str = "connect_server::access";

/// What every call of an observe layer shares: where it counts, and the server's name.
#[derive(Debug)]
pub(crate) struct CallsShared {
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) stats: Arc<Stats>,
    pub(crate) served_by: HeaderValue,
    /// OpenTelemetry, when on.
    pub(crate) tracing: Option<Arc<Tracing>>,
}

/// What a call is, for its log line and metrics.
#[derive(Debug)]
pub(crate) enum Method {
    /// A method with metrics.
    Known(Arc<MethodMetrics>),
    /// Any other path; logged only. (Boxed: a `Uri` would triple the size of every call.)
    Unknown(Box<http::Uri>),
}

impl Method {
    fn path(&self) -> &str {
        match self {
            Self::Known(metrics) => &metrics.path,
            Self::Unknown(uri) => uri.path(),
        }
    }
}

/// A call in flight; see the module docs.
#[derive(Debug)]
pub(crate) struct Call {
    method: Method,
    /// The protocol it came by.
    protocol: Protocol,
    request_id: HeaderValue,
    started: Instant,
    deadline: Option<Instant>,
    /// The layer's counters and server id.
    shared: Arc<CallsShared>,
    /// The connection: its peer for the log line, its call count for the idle timeout.
    connection: Option<Arc<ConnectionCalls>>,
    /// Its span, when tracing is on.
    span: Option<CallSpan>,
    done: bool,
}

impl Call {
    /// Starts a call, counting it as started (and as in flight on its connection).
    pub(crate) fn start(
        method: Method,
        protocol: Protocol,
        connection: Option<Arc<ConnectionCalls>>,
        request_id: HeaderValue,
        deadline: Option<Instant>,
        shared: Arc<CallsShared>,
        span: Option<CallSpan>,
    ) -> Self {
        if let Method::Known(metrics) = &method {
            metrics.started.inc();
        }
        if let Some(connection) = &connection {
            connection.call_started();
        }
        Self {
            method,
            protocol,
            request_id,
            started: Instant::now(),
            deadline,
            shared,
            connection,
            span,
            done: false,
        }
    }

    /// Counts `messages` more responses sent.
    pub(crate) fn sent(&self, messages: u64) {
        if let Method::Known(metrics) = &self.method {
            metrics.sent.inc_by(messages);
        }
        if let Some(span) = &self.span {
            span.sent(messages);
        }
    }

    /// Its span, when tracing is on.
    pub(crate) fn span(&self) -> Option<&CallSpan> {
        self.span.as_ref()
    }

    /// The method's metrics, if it has any.
    pub(crate) fn metrics(&self) -> Option<&Arc<MethodMetrics>> {
        match &self.method {
            Method::Known(metrics) => Some(metrics),
            Method::Unknown(_) => None,
        }
    }

    /// The name of the server, for the response headers.
    pub(crate) fn served_by(&self) -> &HeaderValue {
        &self.shared.served_by
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
        let now = Instant::now();
        if let Some(connection) = &self.connection {
            connection.call_ended(now);
        }
        let elapsed = now - self.started;
        if let Method::Known(metrics) = &self.method {
            metrics.finished(code, elapsed.as_secs_f64());
        }
        match code {
            Code::Cancelled => self.shared.stats.record_cancelled(),
            Code::DeadlineExceeded => self.shared.stats.record_deadline_exceeded(),
            _ => {}
        }
        if let Some(span) = &self.span {
            span.finish(code);
        }
        tracing::info!(
            target: ACCESS_LOG_TARGET,
            method = self.method.path(),
            peer = %Text(self.connection.as_ref().map_or("-", |connection| connection.peer())),
            request_id = %RequestId(&self.request_id),
            code = codes::canonical_name(code),
            // Whole microseconds, so the line reads `0.489`, not `0.48895000000000005`.
            duration_ms = elapsed.as_micros() as f64 / 1000.0,
            protocol = %Text(self.protocol.name()),
            // Recorded only when tracing is on (`None` records nothing).
            trace_id = self.span.as_ref().map(|span| tracing::field::display(span.trace_id())),
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

/// A string logged as it is (`%`), not quoted.
struct Text<'a>(&'a str);

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A request id as text; bytes that are not UTF-8 become U+FFFD.
struct RequestId<'a>(&'a HeaderValue);

impl fmt::Display for RequestId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values are visible ASCII or tab (or opaque bytes, which are rare);
        // `from_utf8` checks that faster than `to_str` does.
        match std::str::from_utf8(self.0.as_bytes()) {
            Ok(text) => f.write_str(text),
            Err(_) => f.write_str(&String::from_utf8_lossy(self.0.as_bytes())),
        }
    }
}
