//! Moving bytes: accepting connections, the limits on them, TLS, and HTTP
//! (HTTP/2, and HTTP/1.1 for the web protocols).
//!
//! Each accepted connection gets a permit of `--max-connections`, its socket
//! is wrapped in the taps that enforce its timeouts, age and busy polling
//! ([`tap`]), TLS runs in the connection's own task under its timeout, the
//! keepalive policy watches the HTTP/2 frames above it ([`ping_policy`]), and
//! hyper serves HTTP/2 (or HTTP/1.1) on it with the connection's own service,
//! its calls running in the connection's task ([`call_set`]). A drain stops
//! the accept loop and closes the listener at once, sends every connection a
//! GOAWAY and waits for them to finish.
//!
//! Why hyper directly and not tonic's `Server`: tonic wraps every request in
//! layers of its own (a boxed and cloned service, `grpc-timeout` parsing,
//! error recovery, a connect-info extension) that cost a unary call more than
//! the handler, and polls its shutdown and age timers on every wake-up of
//! every connection. Here each connection gets its service once, and its
//! timers are looked at only when they may have fired.

mod body_timeout;
mod busy_poll;
mod call_set;
mod coarse_timer;
mod connections;
mod drain;
mod http;
mod listener;
mod max_age;
mod ping_policy;
mod tap;
mod timeouts;
mod tls;
mod tls_refusal;
mod wake_at;

pub(crate) use body_timeout::{BodyTimeout, BodyTimeouts, ReceiveBudget, Watch};
pub(crate) use busy_poll::alongside as with_busy_polling;
pub(crate) use connections::ConnectionCalls;
pub use connections::Connections;
pub(crate) use drain::Drain;
pub(crate) use http::{Http1Limits, Http2Limits, HttpService};
pub(crate) use listener::bind_tcp;
pub use listener::{Accept, Listener, MemoryConnector, MemoryListener, TcpIo};
pub(crate) use ping_policy::PingPolicy;
pub(crate) use tls::Tls;

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::task::TaskTracker;

use self::{
    busy_poll::NoteReads,
    connections::Permit,
    max_age::Lifetime,
    ping_policy::EnforcePings,
    tap::Tapped,
    timeouts::{IdleTimeout, PrefaceTimeout},
};

/// The rules for every connection, as the flags give them.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionRules {
    /// What HTTP/2 allows one connection.
    pub(crate) http2: Http2Limits,
    /// What HTTP/1.1 allows one connection; `None`: HTTP/2 only.
    pub(crate) http1: Option<Http1Limits>,
    /// TLS, when on.
    pub(crate) tls: Option<Tls>,
    /// How long a new connection may take to send the HTTP/2 preface (under
    /// TLS: the first bytes of its handshake).
    pub(crate) preface_timeout: Duration,
    /// How long a connection may have no call in flight; `None`: for ever.
    pub(crate) idle_timeout: Option<Duration>,
    /// When a connection is asked to go away (GOAWAY).
    pub(crate) max_age: Duration,
    /// How long its calls may still run after that.
    pub(crate) max_age_grace: Duration,
    /// How often a client may ping (HTTP/2); `None`: as often as it likes.
    pub(crate) ping_policy: Option<PingPolicy>,
}

/// How every connection of a server is served: the rules, and hyper's
/// builder made from them once.
#[derive(Debug, Clone)]
pub(crate) struct TransportSettings {
    rules: ConnectionRules,
    http: Builder<call_set::ConnectionExecutor>,
}

impl TransportSettings {
    /// How connections are served under `rules`.
    pub(crate) fn new(rules: ConnectionRules) -> Self {
        Self { http: http::builder(rules.http2, rules.http1), rules }
    }

    /// The TLS of every connection, when they speak TLS.
    pub(crate) fn tls(&self) -> Option<&Tls> {
        self.rules.tls.as_ref()
    }
}

/// Serves every connection `listener` accepts until `drain` starts, then
/// waits until the open connections have finished. `make_service` makes the
/// service of one connection. An error: the listener cannot go on (its open
/// connections were let finish first).
pub(crate) async fn serve_listener<A, M, S>(
    mut listener: A,
    connections: &Connections,
    make_service: M,
    settings: &TransportSettings,
    drain: &Drain,
) -> io::Result<()>
where
    A: Accept<Io: AsyncRead + AsyncWrite + Unpin + Send + 'static>,
    M: Fn(&Arc<ConnectionCalls>) -> S,
    S: HttpService,
{
    let tasks = TaskTracker::new();
    // Shared, not cloned into each connection's task: hyper's builder alone is
    // several hundred bytes, held for as long as the connection is open.
    let settings = Arc::new(settings.clone());
    loop {
        let accepted = tokio::select! {
            biased;
            () = drain.started() => break,
            accepted = accept(&mut listener, connections) => accepted,
        };
        match accepted {
            Ok((io, peer, permit)) => {
                let calls = Arc::new(ConnectionCalls::new(peer));
                let service = make_service(&calls);
                tasks.spawn(serve_connection(
                    io,
                    permit,
                    calls,
                    service,
                    Arc::clone(&settings),
                    drain.watch(),
                ));
            }
            Err(error) => {
                // The worker's error: the server stops, as for any failed worker.
                drop(listener);
                tasks.close();
                tasks.wait().await;
                return Err(error);
            }
        }
    }
    // Closes the listener as soon as the drain starts.
    drop(listener);
    tasks.close();
    tasks.wait().await;
    Ok(())
}

/// The next connection, once there is room for it: at the limit, accepting
/// stops and new connections wait in the kernel's backlog.
async fn accept<A: Accept>(
    listener: &mut A,
    connections: &Connections,
) -> io::Result<(A::Io, Option<SocketAddr>, Permit)> {
    let reserved = connections.reserve().await;
    let (io, peer) = listener.accept().await?;
    Ok((io, peer, reserved.open()))
}

/// One connection, from its taps to the end of HTTP/2 on it.
async fn serve_connection<IO, S>(
    io: IO,
    permit: Permit,
    calls: Arc<ConnectionCalls>,
    service: S,
    settings: Arc<TransportSettings>,
    drain: drain::DrainWatch,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService,
{
    let _permit = permit;
    let rules = &settings.rules;
    let opened = calls.opened();
    let idle = rules.idle_timeout.map(|timeout| IdleTimeout::new(Arc::clone(&calls), timeout));
    let lifetime = rules.max_age.saturating_add(rules.max_age_grace);
    let taps = (
        Lifetime::until(opened + lifetime),
        (PrefaceTimeout::new(opened, rules.preface_timeout), (idle, NoteReads)),
    );
    let io = Tapped::new(io, taps);
    let age_limit = opened + rules.max_age;
    match &rules.tls {
        // The ping policy reads frames, so under TLS it goes above it.
        None => {
            let io = EnforcePings::new(io, rules.ping_policy, &calls);
            http::serve_http(io, service, &settings.http, age_limit, drain).await;
        }
        // Boxed because a future is as large as its largest branch: a TLS
        // session's state would otherwise make every plaintext connection's
        // task 3.7 KiB larger (6.9 KiB instead of 3.3 KiB; BENCHMARKS.md,
        // "Idle connections").
        Some(tls) => {
            Box::pin(async {
                if let Some(stream) = tls.handshake(io, calls.peer()).await {
                    let stream = EnforcePings::new(stream, rules.ping_policy, &calls);
                    http::serve_http(stream, service, &settings.http, age_limit, drain).await;
                }
            })
            .await;
        }
    }
}
