//! Serving `ConnectService` on bound listeners until a shutdown future fires,
//! then draining in-flight calls for a bounded grace.
//!
//! A [`ConnectServer`] is cheap to clone and all clones share one state
//! (counters, drain and stop signals), so the same server can serve several
//! listeners, e.g. one per worker runtime, and shut them down together.

use std::{
    fmt,
    future::Future,
    net::SocketAddr,
    sync::{Arc, OnceLock},
    time::Duration,
};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::Layer as _;

use crate::{
    busy_poll,
    config::{Config, MetricsAddr},
    health::Health,
    incoming::Connections,
    limits, max_age,
    observe::{self, Metrics, ObserveLayer},
    routes::{self, DispatchLayer},
    serve::{self, ConnectionSettings, Drain},
    service::{Connect, Limits},
    stats::Stats,
    tls::Tls,
};

/// After the grace, how long ended streams get to deliver their final status.
const FINAL_STATUS_WINDOW: Duration = Duration::from_secs(1);

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
    draining: Drain,
    /// Cancelled when the grace is over: every remaining call ends with `UNAVAILABLE`.
    hard_stop: CancellationToken,
    /// Connection-level limits, counted across every listener.
    connections: Connections,
    /// Health of every listener: `NOT_SERVING` from the moment shutdown starts.
    health: Health,
    /// The per-call metrics of every listener.
    metrics: Arc<Metrics>,
    /// Where `/metrics` is served, once started.
    metrics_endpoint: tokio::sync::OnceCell<Option<SocketAddr>>,
    /// Cancelled when the last clone is dropped: stops the metrics endpoint.
    dropped: CancellationToken,
    /// Built by the first `prepare`, then shared by every listener.
    prepared: OnceLock<Prepared>,
}

/// What every listener serves with that reading files or checking flags may
/// fail to build (TLS certificates, the token file): built once, so a bad
/// flag fails before anything is announced as listening, and N workers do
/// not read the same files N times.
#[derive(Clone)]
struct Prepared {
    /// `ConnectService` (behind the token check) in front of the other services.
    dispatch: DispatchLayer,
    others: tonic::service::Routes,
    tls: Option<Tls>,
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared").field("tls", &self.tls.is_some()).finish_non_exhaustive()
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.dropped.cancel();
    }
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
                draining: Drain::default(),
                hard_stop: CancellationToken::new(),
                health: Health::serving(),
                metrics: Arc::default(),
                metrics_endpoint: tokio::sync::OnceCell::new(),
                dropped: CancellationToken::new(),
                prepared: OnceLock::new(),
            }),
        }
    }

    /// Builds what every listener needs from the configuration (TLS, the bearer
    /// token, the services) and reports a bad flag or file. Serving does it on
    /// first use; call it first to fail before announcing anything.
    pub fn prepare(&self) -> anyhow::Result<()> {
        self.prepared().map(drop)
    }

    fn prepared(&self) -> anyhow::Result<Prepared> {
        let shared = &self.shared;
        if let Some(prepared) = shared.prepared.get() {
            return Ok(prepared.clone());
        }
        let config = &shared.config;
        let service = Connect::new(Limits::from(config), Arc::clone(&shared.stats), shared.hard_stop.clone());
        let (dispatch, others) = routes::routes(config, service, &shared.health)?;
        let prepared = Prepared { dispatch, others, tls: config.tls.server_config()? };
        // Two listeners preparing at once both succeed; either result will do.
        Ok(shared.prepared.get_or_init(|| prepared).clone())
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

    /// The per-call metrics, shared by every listener of this server.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.shared.metrics)
    }

    /// Starts serving `/metrics` on `--metrics-addr` (unless `off`); later calls
    /// only return the address. Serves until the last clone of this server is
    /// dropped. [`serve`](Self::serve) calls it; with several listeners, call it once.
    pub async fn start_metrics_endpoint(&self) -> anyhow::Result<Option<SocketAddr>> {
        let shared = &self.shared;
        let addr = shared
            .metrics_endpoint
            .get_or_try_init(|| async {
                match shared.config.metrics_addr {
                    MetricsAddr::Off => Ok(None),
                    MetricsAddr::At(addr) => {
                        let registry = shared.metrics.registry().clone();
                        observe::endpoint::spawn(addr, registry, shared.dropped.clone())
                            .await
                            .map(Some)
                            .map_err(|error| anyhow::anyhow!("cannot serve metrics on {addr}: {error}"))
                    }
                }
            })
            .await?;
        Ok(*addr)
    }

    /// Where `/metrics` is served, once [`start_metrics_endpoint`](Self::start_metrics_endpoint) has run.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.shared.metrics_endpoint.get().copied().flatten()
    }

    /// Serves on `listener` until `shutdown` resolves, then drains (see
    /// [`shutdown_after`](Self::shutdown_after)). The one-listener entry point;
    /// it also starts the metrics endpoint.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        self.prepare()?;
        self.start_metrics_endpoint().await?;
        self.run_until_drained(self.serve_listener(listener), shutdown).await
    }

    /// Drives `serving` (one listener, or every worker) beside the periodic
    /// summary and the shutdown that `signal` starts. Done when `serving` has
    /// drained, which may be well before the grace is over.
    pub async fn run_until_drained(
        &self,
        serving: impl Future<Output = anyhow::Result<()>>,
        signal: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let reporter = self.spawn_stats_reporter();
        let stopping = self.shutdown_after(signal);
        tokio::pin!(serving, stopping);
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
        let config = &shared.config;
        let Prepared { dispatch, others, tls } = self.prepared()?;
        let served_by = observe::served_by(config.server_id.as_deref(), listener.local_addr()?)?;
        let observe = ObserveLayer::new(Arc::clone(&shared.metrics), Arc::clone(&shared.stats), served_by);
        let settings = ConnectionSettings {
            http2: limits::http2_builder(&config.limits),
            tls,
            max_age: config.limits.max_connection_age,
        };
        let service = observe.layer(dispatch.layer(others));
        let incoming =
            max_age::limit_lifetime(shared.connections.accept(listener), config.limits.connection_lifetime());
        let serving = busy_poll::alongside(
            config.busy_poll,
            shared.metrics.busy_poll_seconds(),
            serve::serve(incoming, |info| service.on_connection(info), settings, shared.draining.clone()),
        );
        tokio::pin!(serving);
        tokio::select! {
            () = &mut serving => Ok(()),
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
            // Another clone's shutdown already ended the grace: nothing left to drain.
            () = shared.hard_stop.cancelled() => return,
        }
        shared.health.set_not_serving().await;
        let lame_duck = shared.config.lame_duck;
        if !lame_duck.is_zero() {
            tracing::info!(
                ?lame_duck,
                "shutdown started: health NOT_SERVING, still serving for the lame duck"
            );
            tokio::time::sleep(lame_duck).await;
        }
        tracing::info!("shutdown started: no new connections, draining in-flight calls");
        shared.draining.start();
        shared.health.end_watches().await;
        let grace = shared.config.shutdown_grace;
        tokio::time::sleep(grace).await;
        let open = shared.stats.snapshot().streams_open;
        if open > 0 {
            tracing::warn!(open_streams = open, ?grace, "shutdown grace over: ending the remaining streams");
        }
        shared.hard_stop.cancel();
    }

    /// Starts the periodic summary, unless `--stats-interval` is 0.
    pub fn spawn_stats_reporter(&self) -> Option<tokio::task::JoinHandle<()>> {
        let interval = self.shared.config.stats_interval;
        (!interval.is_zero()).then(|| tokio::spawn(self.stats().report_every(interval)))
    }
}
