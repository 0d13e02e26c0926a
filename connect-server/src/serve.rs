//! Serving HTTP/2 connections with hyper: the accept loop, TLS, and a
//! graceful end for each connection.
//!
//! Why not tonic's `Server`: it wraps every request in layers of its own
//! (a boxed and cloned service, `grpc-timeout` parsing, error recovery, a
//! connect-info extension) that cost a unary call more than our handler, and
//! polls its shutdown and age timers on every wake-up of every connection.
//! Here each connection gets its service once, with its [`ConnInfo`], and its
//! timers are looked at only when they may have fired. What tonic's server
//! did is kept: a drain stops the accept loop and closes the listener at once,
//! sends every connection a GOAWAY and waits for them to finish; a connection
//! past `--max-connection-age` gets a GOAWAY too (the grace after it is
//! [`crate::max_age`]); TLS handshakes run in the connection's own task under
//! their timeout.

use std::{
    cell::RefCell,
    convert::Infallible,
    future::{Future, poll_fn},
    pin::pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Waker},
    time::Duration,
};

use futures::{Stream, StreamExt as _};
use http::{Request, Response};
use hyper::{body::Incoming, server::conn::http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    sync::{Notify, futures::OwnedNotified},
    time::Instant,
};
use tokio_util::task::TaskTracker;
use tonic::transport::server::Connected;
use tower::Service;

use crate::{incoming::ConnInfo, tls::Tls, wake_at::WakeAt};

/// The signal that starts a drain: no new connections, GOAWAY on the open ones.
#[derive(Debug, Clone, Default)]
pub(crate) struct Drain {
    inner: Arc<DrainInner>,
}

#[derive(Debug, Default)]
struct DrainInner {
    started: AtomicBool,
    notify: Arc<Notify>,
}

impl Drain {
    /// Starts the drain on every listener and connection.
    pub(crate) fn start(&self) {
        self.inner.started.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Whether the drain has started.
    pub(crate) fn is_started(&self) -> bool {
        self.inner.started.load(Ordering::SeqCst)
    }

    /// Resolves once the drain has started.
    pub(crate) async fn started(&self) {
        let notified = self.inner.notify.notified();
        let mut notified = pin!(notified);
        // Register before checking, so a start in between is not missed.
        notified.as_mut().enable();
        if !self.is_started() {
            notified.await;
        }
    }

    fn watch(&self) -> DrainWatch {
        DrainWatch { drain: self.clone(), notified: None, registered: None }
    }
}

/// One connection's view of the drain: registers for the wake-up once, then
/// reads a flag (polling a `Notified` again would take its lock on every wake-up).
struct DrainWatch {
    drain: Drain,
    notified: Option<std::pin::Pin<Box<OwnedNotified>>>,
    registered: Option<Waker>,
}

impl DrainWatch {
    fn poll_started(&mut self, cx: &mut Context<'_>) -> bool {
        if self.drain.is_started() {
            return true;
        }
        if self.registered.as_ref().is_some_and(|waker| waker.will_wake(cx.waker())) {
            return false;
        }
        let notified = self
            .notified
            .get_or_insert_with(|| Box::pin(Arc::clone(&self.drain.inner.notify).notified_owned()));
        if notified.as_mut().poll(cx).is_ready() {
            return true;
        }
        self.registered = Some(cx.waker().clone());
        // A start between the flag check and the registration has notified nobody.
        self.drain.is_started()
    }
}

/// How connections are served: HTTP/2 settings, TLS, age.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionSettings {
    /// hyper's HTTP/2 builder, with the limits applied.
    pub http2: http2::Builder<TokioExecutor>,
    /// TLS, when on.
    pub tls: Option<Tls>,
    /// When a connection is asked to go away (GOAWAY).
    pub max_age: Duration,
}

/// Serves every connection of `incoming` until `drain` starts, then waits
/// until the open connections have finished. `make_service` makes the service
/// of one connection from its [`ConnInfo`].
pub(crate) async fn serve<I, IO, E, M, S>(
    incoming: I,
    make_service: M,
    settings: ConnectionSettings,
    drain: Drain,
) where
    I: Stream<Item = Result<IO, E>>,
    IO: AsyncRead + AsyncWrite + Connected<ConnectInfo = ConnInfo> + Unpin + Send + 'static,
    M: Fn(&ConnInfo) -> S,
    S: ConnectionService,
{
    let connections = TaskTracker::new();
    {
        // Scoped: dropping `incoming` closes the listener as soon as the drain starts.
        let mut incoming = pin!(incoming);
        loop {
            let accepted = tokio::select! {
                biased;
                () = drain.started() => break,
                accepted = incoming.next() => accepted,
            };
            match accepted {
                Some(Ok(io)) => {
                    let service = PerConnection(RefCell::new(make_service(&io.connect_info())));
                    connections.spawn(serve_io(io, service, settings.clone(), drain.watch()));
                }
                Some(Err(_)) => {} // the accept stream has logged it
                None => break,
            }
        }
    }
    connections.close();
    connections.wait().await;
}

/// Runs the TLS handshake when TLS is on, then serves HTTP/2 on the connection.
async fn serve_io<IO, S: ConnectionService>(
    io: IO,
    service: PerConnection<S>,
    settings: ConnectionSettings,
    drain: DrainWatch,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let age_limit = Instant::now() + settings.max_age;
    let Some(tls) = settings.tls else {
        return serve_http2(io, service, &settings.http2, age_limit, drain).await;
    };
    match tokio::time::timeout(tls.handshake_timeout, tls.acceptor.accept(io)).await {
        Ok(Ok(stream)) => serve_http2(stream, service, &settings.http2, age_limit, drain).await,
        Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
        Err(_) => tracing::debug!("TLS handshake timed out"),
    }
}

/// Serves HTTP/2 on `io` until the client or the server closes it; at the
/// drain or at `age_limit`, the connection is asked to go away and its calls finish.
async fn serve_http2<IO, S: ConnectionService>(
    io: IO,
    service: PerConnection<S>,
    http2: &http2::Builder<TokioExecutor>,
    age_limit: Instant,
    mut drain: DrainWatch,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut connection = pin!(http2.serve_connection(TokioIo::new(io), service));
    let mut age = WakeAt::new(age_limit);
    let mut going_away = false;
    let result = poll_fn(|cx| {
        if !going_away && (drain.poll_started(cx) || age.poll_expired(cx)) {
            going_away = true;
            connection.as_mut().graceful_shutdown();
        }
        connection.as_mut().poll(cx)
    })
    .await;
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// What serving a connection asks of its service: a tower service for hyper's
/// requests that never fails, whose future and response body can move to the
/// connection's task. (One name for the bounds every function here repeats.)
pub(crate) trait ConnectionService:
    Service<
        Request<Incoming>,
        Response = Response<Self::ResponseBody>,
        Error = Infallible,
        Future: Send + 'static,
    > + Send
    + 'static
{
    /// The body of its responses.
    type ResponseBody: http_body::Body<Data = bytes::Bytes, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + 'static;
}

impl<S, B> ConnectionService for S
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type ResponseBody = B;
}

/// A connection's service, as hyper calls it.
///
/// hyper calls through `&self` and tower through `&mut self`; the usual bridge
/// clones the whole service stack for every request. A connection owns its
/// service and calls it from its own task, one call at a time, so a `RefCell`
/// bridges them without the clone.
struct PerConnection<S>(RefCell<S>);

impl<S> hyper::service::Service<Request<Incoming>> for PerConnection<S>
where
    S: Service<Request<Incoming>, Error = Infallible>,
{
    type Response = S::Response;
    type Error = Infallible;
    type Future = S::Future;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        // Every service here is always ready (none applies backpressure), so it is
        // called without `poll_ready`; `call` never re-enters, so the borrow cannot fail.
        self.0.borrow_mut().call(request)
    }
}
