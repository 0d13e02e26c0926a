//! Serving `ConnectService` on bound listeners until a shutdown future fires,
//! then draining in-flight calls for a bounded grace.
//!
//! A [`ConnectServer`] is cheap to clone and all clones share one state
//! (counters, drain and stop signals), so the same server can serve several
//! listeners, e.g. one per worker runtime, and shut them down together.

use std::{future::Future, sync::Arc, time::Duration};

use connect_proto::ConnectServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;

use crate::{
    config::Config,
    content_type::RequireGrpcLayer,
    incoming::{Connections, TrackCallsLayer},
    service::{Connect, Limits},
    stats::Stats,
};

/// After the grace, how long ended streams get to deliver their final status.
const FINAL_STATUS_WINDOW: Duration = Duration::from_secs(1);

/// Streams one connection may have open at once, until the production flags set it:
/// tonic's default is no limit at all.
const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 200;

/// A configured server; clones share their state.
#[derive(Debug, Clone)]
pub struct ConnectServer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: Config,
    stats: Arc<Stats>,
    /// Cancelled when shutdown starts: listeners stop accepting, connections drain.
    draining: CancellationToken,
    /// Cancelled when the grace is over: every remaining call ends with `UNAVAILABLE`.
    hard_stop: CancellationToken,
    /// Connection-level limits, counted across every listener.
    connections: Connections,
}

impl ConnectServer {
    /// A server with `config`; nothing is bound or spawned yet.
    pub fn new(config: Config) -> Self {
        let idle_timeout = (!config.idle_timeout.is_zero()).then_some(config.idle_timeout);
        let connections = Connections::new(config.max_connections, config.handshake_timeout, idle_timeout);
        Self {
            shared: Arc::new(Shared {
                connections,
                config,
                stats: Arc::default(),
                draining: CancellationToken::new(),
                hard_stop: CancellationToken::new(),
            }),
        }
    }

    /// The configuration this server runs with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The open connections and their limits, shared by every listener.
    pub fn connections(&self) -> &Connections {
        &self.shared.connections
    }

    /// The live counters, for tests and the periodic summary.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.shared.stats)
    }

    /// Serves on `listener` until `shutdown` resolves, then drains (see
    /// [`shutdown_after`](Self::shutdown_after)). The one-listener entry point.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let reporter = self.spawn_stats_reporter();
        let serving = self.serve_listener(listener);
        let stopping = self.shutdown_after(shutdown);
        tokio::pin!(serving, stopping);
        // Done when the listener has drained, which may be well before the grace is over.
        let result = tokio::select! {
            result = &mut serving => result,
            () = &mut stopping => serving.await,
        };
        if let Some(reporter) = reporter {
            reporter.abort();
        }
        result
    }

    /// Serves one listener until the drain starts and its connections are done,
    /// or the grace is over. Call it once per listener; all share one shutdown.
    pub async fn serve_listener(&self, listener: TcpListener) -> anyhow::Result<()> {
        let shared = &self.shared;
        let service =
            Connect::new(Limits::from(&shared.config), Arc::clone(&shared.stats), shared.hard_stop.clone());
        let incoming = shared.connections.accept(listener);
        let serving = Server::builder()
            .max_concurrent_streams(DEFAULT_MAX_CONCURRENT_STREAMS)
            .layer(TrackCallsLayer::new(shared.connections.clone()))
            .layer(RequireGrpcLayer)
            .add_service(ConnectServiceServer::new(service))
            .serve_with_incoming_shutdown(incoming, shared.draining.cancelled());
        tokio::pin!(serving);
        tokio::select! {
            result = &mut serving => Ok(result?),
            () = shared.hard_stop.cancelled() => {
                // The ended streams now send UNAVAILABLE; connections close once they have.
                let _ = tokio::time::timeout(FINAL_STATUS_WINDOW, &mut serving).await;
                Ok(())
            }
        }
    }

    /// Waits for `signal`, starts the drain, and ends the remaining calls once
    /// the grace is over. Resolves when the server has stopped.
    pub async fn shutdown_after(&self, signal: impl Future<Output = ()>) {
        let shared = &self.shared;
        tokio::select! {
            () = signal => {}
            // Every listener may have failed on its own; nothing left to drain then.
            () = shared.hard_stop.cancelled() => return,
        }
        tracing::info!("shutdown started: no new connections, draining in-flight calls");
        shared.draining.cancel();
        let grace = shared.config.shutdown_grace;
        tokio::time::sleep(grace).await;
        let open = shared.stats.snapshot().streams_open;
        if open > 0 {
            tracing::warn!(open_streams = open, ?grace, "shutdown grace over: ending the remaining calls");
        }
        shared.hard_stop.cancel();
    }

    /// Starts the periodic summary, unless `--stats-interval` is 0.
    pub fn spawn_stats_reporter(&self) -> Option<tokio::task::JoinHandle<()>> {
        let interval = self.shared.config.stats_interval;
        (!interval.is_zero()).then(|| tokio::spawn(self.stats().report_every(interval)))
    }
}
