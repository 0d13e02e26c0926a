//! The HTTP endpoint serving `/metrics` to Prometheus (and, beside it, the
//! routes of the browser playground when it is on).
//!
//! Its socket is bound when the server is built, so a taken address fails
//! before anything is announced, and tests know the address at once.

use std::net::SocketAddr;

use axum::{Router, http::header::CONTENT_TYPE, routing::get};
use prometheus::Registry;
use tokio_util::sync::CancellationToken;

use super::metrics::render;
use crate::transport::bind_tcp;

/// The bound, not yet serving, metrics endpoint.
#[derive(Debug)]
pub(crate) struct MetricsEndpoint {
    listener: std::net::TcpListener,
    addr: SocketAddr,
}

impl MetricsEndpoint {
    /// Binds `addr`.
    pub(crate) fn bind(addr: SocketAddr) -> anyhow::Result<Self> {
        let bound = bind_tcp(addr, false)
            .map_err(|error| anyhow::anyhow!("cannot serve metrics on {addr}: {error}"))?;
        let addr = bound.local_addr()?;
        Ok(Self { listener: bound, addr })
    }

    /// Where it is bound.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `registry` at `/metrics`, and the routes of `extra`, on the current runtime
    /// until `stop` is cancelled.
    pub(crate) fn spawn(
        self,
        registry: Registry,
        extra: Router,
        stop: CancellationToken,
    ) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::from_std(self.listener)?;
        let app = Router::new().route(
            "/metrics",
            get(move || {
                let body = render(&registry);
                async move { ([(CONTENT_TYPE, prometheus::TEXT_FORMAT)], body) }
            }),
        );
        // The peer's address, for the access-log lines of playground calls.
        let app = app.merge(extra).into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move {
            let serving = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
            if let Err(error) = serving.await {
                tracing::warn!(%error, "metrics endpoint failed");
            }
        });
        let local = self.addr;
        tracing::info!(addr = %local, "metrics at http://{local}/metrics");
        Ok(())
    }
}
