//! Running the server: [`ConnectServer::serve`] is the one way to serve, on
//! any number of listeners (one worker thread each), until a shutdown future
//! fires; then the drain, bounded by the grace.
//!
//! A [`ConnectServer`] is cheap to clone and all clones share one state
//! (counters, metrics, health, the drain and the hard stop), so every worker
//! serves the same server and one shutdown stops them all.

mod builder;
mod memory;
mod reload;
mod shutdown;
mod workers;

pub use builder::{Builder, GrpcService, ServiceOptions};
pub use shutdown::signal;
pub use workers::{bind, default_count};

use std::{
    future::Future,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use crate::{
    Error,
    config::{Config, MetricsAddr, Settings},
    service::{Admission, Dispatch, Handlers, Health, Limits, MessageLimits, connect_service},
    telemetry::{Metrics, MetricsEndpoint, Observe, ObserveLayer, Stats, Tracing},
    transport::{ConnectionCalls, Connections, Drain, Listener, ReceiveBudget},
    web::{Arrived, Protocol, Schema},
};

/// A configured server; clones share their state.
#[derive(Debug, Clone)]
pub struct ConnectServer {
    shared: Arc<Shared>,
}

/// What every worker of one server shares.
#[derive(Debug)]
struct Shared {
    settings: Settings,
    stats: Arc<Stats>,
    /// The per-call metrics of every listener.
    metrics: Arc<Metrics>,
    /// `--max-connections`, counted across every listener.
    connections: Connections,
    /// `--max-calls-in-flight`, counted across every listener.
    admission: Arc<Admission>,
    /// OpenTelemetry, when on.
    tracing: Option<Arc<Tracing>>,
    /// `--max-pending-message-bytes`, counted across every listener.
    receiving: Arc<ReceiveBudget>,
    /// `NOT_SERVING` from the moment shutdown starts.
    health: Health,
    /// Every service, by method path.
    dispatch: Dispatch,
    /// Their descriptors.
    schema: Schema,
    /// Started when shutdown starts: listeners stop accepting, connections drain.
    draining: Drain,
    /// Cancelled when the grace is over: every remaining call ends with `UNAVAILABLE`.
    hard_stop: CancellationToken,
    /// The bound `/metrics` endpoint, until [`ConnectServer::serve`] starts it.
    metrics_endpoint: Mutex<Option<MetricsEndpoint>>,
    metrics_addr: Option<SocketAddr>,
    /// `true` once every worker accepts.
    ready: watch::Sender<bool>,
    /// Cancelled when the last clone is dropped: stops the metrics endpoint.
    dropped: CancellationToken,
    /// Reads the TLS files and the token file again.
    reloader: Arc<reload::Reloader>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.dropped.cancel();
    }
}

impl Shared {
    /// The state of a server with `settings` and these services; binds the metrics endpoint.
    fn new(
        mut settings: Settings,
        schema: Schema,
        metrics: Arc<Metrics>,
        stats: Arc<Stats>,
        health: Health,
        dispatch: Dispatch,
        hard_stop: CancellationToken,
    ) -> Result<Self, Error> {
        let tracing =
            Tracing::from_settings(settings.otlp_endpoint.as_deref()).map_err(Error::config)?.map(Arc::new);
        let metrics_endpoint = match settings.metrics_addr {
            MetricsAddr::Off => None,
            MetricsAddr::At(addr) => Some(MetricsEndpoint::bind(addr).map_err(Error::config)?),
        };
        let receiving =
            ReceiveBudget::new(settings.max_pending_message_bytes, metrics.calls_refused("message_bytes"));
        settings.web = settings.web.within(&receiving);
        let tls = settings.transport.tls().cloned();
        let reload_metrics = metrics.reload_metrics(tls.is_some());
        let reloader =
            reload::Reloader::new(settings.reload.clone(), tls, settings.auth.clone(), reload_metrics);
        Ok(Self {
            reloader: Arc::new(reloader),
            connections: Connections::new(settings.max_connections),
            admission: Admission::new(
                settings.max_calls_in_flight,
                metrics.calls_refused("overload"),
                metrics.calls_refused("connection_share"),
            ),
            tracing,
            receiving,
            metrics_addr: metrics_endpoint.as_ref().map(MetricsEndpoint::addr),
            metrics_endpoint: Mutex::new(metrics_endpoint),
            settings,
            stats,
            metrics,
            health,
            dispatch,
            schema,
            draining: Drain::default(),
            hard_stop,
            ready: watch::Sender::new(false),
            dropped: CancellationToken::new(),
        })
    }

    /// The service stack of every call, named `served_by`: observe, then dispatch.
    fn stack(&self, served_by: http::HeaderValue) -> Observe<Dispatch> {
        use tower::Layer as _;
        let observe = ObserveLayer::new(Arc::clone(&self.metrics), Arc::clone(&self.stats), served_by)
            .traced(self.tracing.clone());
        observe.layer(self.dispatch.clone())
    }
}

impl ConnectServer {
    /// A server of the services the [`Builder`] adds, with everything
    /// `config` sets (protocols, TLS, the token, limits, telemetry).
    pub fn builder(config: Config) -> Builder {
        Builder::new(config)
    }

    /// The `ConnectService` server: [`builder`](Self::builder) with
    /// `ConnectService` and its descriptors added. Reads its files (TLS, the
    /// token) and binds the metrics endpoint, so a bad flag fails here,
    /// before anything is served.
    pub fn new(config: Config) -> Result<Self, Error> {
        let builder = Self::builder(config);
        let handlers = Handlers::new(
            Limits::of(builder.config()),
            Arc::clone(&builder.stats),
            builder.hard_stop.clone(),
        );
        let service = connect_service(handlers, MessageLimits::of(builder.config()));
        builder.add_service(service).file_descriptor_set(connect_proto::FILE_DESCRIPTOR_SET)?.build()
    }

    /// Binds `--addr` (one listener per `--workers`), prints `Server listening
    /// on ADDR` once every worker accepts, and serves until SIGINT or SIGTERM
    /// ([`signal`]) and the drain are done, reloading on SIGHUP: what a
    /// binary's `main` does.
    pub async fn run(self) -> Result<(), Error> {
        let listen = self.shared.settings.listen;
        let listeners = bind(listen.addr, listen.workers, listen.share_port)?;
        let addr = listeners[0].local_addr().map_err(|error| Error::Serve(error.to_string()))?;
        let serving = self.clone().serve(listeners, signal());
        tokio::pin!(serving);
        tokio::select! {
            result = &mut serving => return result,
            // Scripts and tests wait for this line.
            () = self.ready() => println!("Server listening on {addr}"),
        }
        serving.await
    }

    /// Reads the TLS files and the token file again, as SIGHUP and a change
    /// to them do: handshakes that start from then on use the new
    /// certificate, key and client CA, and calls from then on need one of
    /// the new tokens; connections and calls in flight keep theirs. A part
    /// that fails to read or parse keeps what it had, and is the error (also
    /// logged at WARN); every reload counts in `connect_reload_total` by
    /// result. Reads the files on the calling thread.
    pub fn reload(&self) -> Result<(), Error> {
        self.shared.reloader.reload().map_err(Error::config)
    }

    /// The live counters, for tests and the periodic summary.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.shared.stats)
    }

    /// The open connections, across every listener.
    pub fn connections(&self) -> &Connections {
        &self.shared.connections
    }

    /// Where `/metrics` is served (from [`serve`](Self::serve) on); `None` when off.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.shared.metrics_addr
    }

    /// Resolves once every worker of [`serve`](Self::serve) accepts connections.
    pub async fn ready(&self) {
        let mut ready = self.shared.ready.subscribe();
        // The sender lives in `self`, so the wait cannot fail.
        let _ = ready.wait_for(|ready| *ready).await;
    }

    /// Serves on every listener, each on a worker thread of its own, until
    /// `shutdown` resolves (or a worker fails), reloading the TLS files and
    /// the token file on SIGHUP and when they change; then health turns
    /// `NOT_SERVING`, the drain starts, and the calls still running when the
    /// grace is over are ended. Returns once every worker has stopped.
    pub async fn serve<L: Listener>(
        self,
        listeners: Vec<L>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        if listeners.is_empty() {
            return Err(Error::NoListener);
        }
        let shared = &self.shared;
        let endpoint = shared.metrics_endpoint.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(endpoint) = endpoint {
            let playground = match shared.settings.playground {
                Some(max_calls) => {
                    let grpc_addr =
                        listeners[0].local_addr().map_err(|error| Error::Serve(error.to_string()))?;
                    playground_routes(shared, grpc_addr, max_calls, endpoint.addr()).map_err(Error::config)?
                }
                None => axum::Router::new(),
            };
            endpoint
                .spawn(shared.metrics.registry().clone(), playground, shared.dropped.clone())
                .map_err(Error::config)?;
        }
        let workers = workers::start(&self, listeners).await.map_err(Error::serve)?;
        // Before "ready": from then on a SIGHUP reloads rather than ends the process.
        let _reloading = shared.reloader.start();
        shared.ready.send_replace(true);
        let reporter = shared
            .settings
            .stats_interval
            .map(|every| tokio::spawn(Arc::clone(&shared.metrics).summarize_every(every)));
        // A worker that fails stops the others, as a signal would.
        let failed = CancellationToken::new();
        let signal = async {
            tokio::select! {
                () = shutdown => {}
                () = failed.cancelled() => {}
            }
        };
        let mut workers = workers;
        let serving = workers.wait(&failed);
        let stopping = shutdown::after(shared, signal);
        tokio::pin!(serving, stopping);
        // Done when every worker has drained, which may be well before the grace is over.
        let result = tokio::select! {
            result = &mut serving => result,
            () = &mut stopping => serving.await,
        };
        if let Some(reporter) = reporter {
            reporter.abort();
        }
        if let Some(tracing) = &shared.tracing {
            tracing.flush().await;
        }
        result.map_err(Error::serve)
    }
}

/// The playground's routes: calls through the stack the workers serve
/// (observe, auth, dispatch), named as the first listener's worker names itself.
fn playground_routes(
    shared: &Shared,
    grpc_addr: SocketAddr,
    max_calls: std::num::NonZeroUsize,
    endpoint: SocketAddr,
) -> anyhow::Result<axum::Router> {
    let served_by = crate::telemetry::served_by(shared.settings.server_id.as_deref(), grpc_addr)?;
    let stack = shared.stack(served_by);
    let stack_for = move |peer| {
        // Its calls are logged and counted as protocol `playground`.
        stack.on_connection(&Arc::new(ConnectionCalls::new(peer))).map_request(
            |mut request: http::Request<tonic::body::Body>| {
                request.extensions_mut().insert(Arrived::Via(Protocol::Playground));
                request
            },
        )
    };
    // For the page's "copy as" commands: where a client reaches the gRPC port.
    let host =
        if grpc_addr.ip().is_unspecified() { "localhost".to_owned() } else { grpc_addr.ip().to_string() };
    let host = if host.contains(':') { format!("[{host}]") } else { host };
    let scheme = if shared.settings.transport.tls().is_some() { "https" } else { "http" };
    let settings = connect_playground::Settings {
        max_message_bytes: shared.settings.messages.max_recv,
        max_message_flag: "--max-recv-message-size",
        max_calls,
        max_calls_flag: "--playground-max-calls",
        endpoint,
        grpc_url: format!("{scheme}://{host}:{}", grpc_addr.port()),
    };
    Ok(connect_playground::router(stack_for, shared.schema.clone(), settings))
}
