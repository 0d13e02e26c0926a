//! The HTTP endpoint serving `/metrics` to Prometheus.

use std::net::SocketAddr;

use axum::{Router, http::header::CONTENT_TYPE, routing::get};
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::metrics::render;

/// Binds `addr` and serves `registry` at `/metrics` until `stop` is cancelled; returns the bound address.
pub(crate) async fn spawn(
    addr: SocketAddr,
    registry: Registry,
    stop: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let body = render(&registry);
            async move { ([(CONTENT_TYPE, prometheus::TEXT_FORMAT)], body) }
        }),
    );
    tokio::spawn(async move {
        let serving = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
        if let Err(error) = serving.await {
            tracing::warn!(%error, "metrics endpoint failed");
        }
    });
    tracing::info!(addr = %local, "metrics at http://{local}/metrics");
    Ok(local)
}
