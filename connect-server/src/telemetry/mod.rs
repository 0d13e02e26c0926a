//! What operators see: the per-call layer (the `x-request-id` and
//! `x-served-by` response headers, one access-log line per finished call,
//! the go-grpc-prometheus metrics), the `/metrics` endpoint, the live
//! counters with their periodic summary, and the log writer.
//!
//! The per-call work happens in one tower layer ([`ObserveLayer`]) around the
//! whole router, so it sees every call, including those to unknown methods,
//! and the handlers need not know about it.

mod call;
mod endpoint;
mod layer;
pub mod logging;
mod metrics;
mod stats;
mod trace;

pub(crate) use call::ACCESS_LOG_TARGET;
pub(crate) use endpoint::MetricsEndpoint;
pub use layer::{Observe, ObserveLayer, ObservedBody, ObservedFuture};
pub(crate) use logging::LogFormat;
pub use metrics::Metrics;
pub(crate) use metrics::ReloadMetrics;
pub(crate) use stats::OpenStream;
pub use stats::{Stats, StatsSnapshot};
pub(crate) use trace::Tracing;

use std::net::SocketAddr;

use http::HeaderValue;

/// The `x-served-by` value: `server_id` when given, else `hostname:port` of `local`.
pub(crate) fn served_by(server_id: Option<&str>, local: SocketAddr) -> anyhow::Result<HeaderValue> {
    let name = match server_id {
        Some(id) => id.to_owned(),
        None => format!("{}:{}", gethostname::gethostname().to_string_lossy(), local.port()),
    };
    HeaderValue::from_str(&name)
        .map_err(|_| anyhow::anyhow!("server id {name:?} is not a valid header value"))
}
