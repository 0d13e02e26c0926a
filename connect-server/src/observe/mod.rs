//! What operators see of each call: the `x-request-id` and `x-served-by`
//! response headers, one log line per finished call, and the
//! go-grpc-prometheus server metrics, served at `/metrics`.
//!
//! Everything happens in one tower layer ([`ObserveLayer`]) around the whole
//! router, so it sees every call, including those to unknown methods, and the
//! handlers need not know about it.

mod call;
mod codes;
pub(crate) mod endpoint;
mod frames;
mod layer;
mod methods;
mod metrics;

pub use call::ACCESS_LOG_TARGET;
pub use codes::canonical_name;
pub use layer::{Observe, ObserveLayer, ObservedBody, ObservedFuture, REQUEST_ID, SERVED_BY};
pub use metrics::Metrics;

use std::net::SocketAddr;

use http::HeaderValue;

/// The `x-served-by` value: `server_id` when given, else `hostname:port` of `local`.
pub fn served_by(server_id: Option<&str>, local: SocketAddr) -> anyhow::Result<HeaderValue> {
    let name = match server_id {
        Some(id) => id.to_owned(),
        None => format!("{}:{}", gethostname::gethostname().to_string_lossy(), local.port()),
    };
    HeaderValue::from_str(&name)
        .map_err(|_| anyhow::anyhow!("server id {name:?} is not a valid header value"))
}
