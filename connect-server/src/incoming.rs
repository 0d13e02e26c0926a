//! The accepting side of a listener: connection-level limits that tonic and
//! hyper do not offer.
//!
//! hyper bounds what happens *inside* an HTTP/2 connection (streams, resets,
//! keepalive pings), but nothing bounds the connections themselves. This
//! module adds three limits, shared by every listener of one server:
//!
//! - **max connections**: a semaphore permit is taken before `accept` and held
//!   by the connection, so beyond the limit new connections wait in the
//!   kernel's backlog instead of costing a file descriptor and a task each;
//! - **handshake timeout**: a connection that has not sent the 24 bytes of the
//!   HTTP/2 client preface (or, under TLS, the start of its handshake) in time
//!   is closed (slowloris before the preface);
//! - **idle timeout**: a connection with no call in flight for that long is
//!   closed (slowloris after the preface). Keepalive pings cannot do this: an
//!   idle but live peer answers them.
//!
//! The idle timeout needs to know when calls start and end, which only the
//! service sees: [`TrackCallsLayer`] finds the connection by its address pair
//! and holds a guard until the response body is dropped.

use std::{
    collections::HashMap,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use futures::Stream;
use http::{Request, Response};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{Notify, OwnedSemaphorePermit, Semaphore},
    time::{Instant, Sleep},
};
use tonic::{
    body::Body,
    transport::server::{Connected, TcpConnectInfo, TlsConnectInfo},
};
use tower::{Layer, Service};

/// Length of the HTTP/2 client connection preface (`PRI * HTTP/2.0...`).
const PREFACE_LEN: usize = 24;

/// How long to pause accepting after an error such as "too many open files",
/// so the loop does not spin while the process is out of descriptors.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// The connection-level limits and the table of open connections, shared by all listeners.
#[derive(Debug, Clone)]
pub struct Connections {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    permits: Arc<Semaphore>,
    handshake_timeout: Duration,
    idle_timeout: Option<Duration>,
    open: Mutex<HashMap<ConnKey, Weak<Activity>>>,
    /// Connections open now (the semaphore also counts the permits held by pending accepts).
    open_count: AtomicUsize,
    /// Woken whenever a connection closes.
    closed: Notify,
}

/// A connection is found by its local and remote address: unique among open TCP connections.
type ConnKey = (SocketAddr, SocketAddr);

impl Connections {
    /// Limits: at most `max_connections` at once, the preface within
    /// `handshake_timeout`, and no more than `idle_timeout` without a call (`None`: no limit).
    pub fn new(max_connections: usize, handshake_timeout: Duration, idle_timeout: Option<Duration>) -> Self {
        Self {
            inner: Arc::new(Inner {
                permits: Arc::new(Semaphore::new(max_connections)),
                handshake_timeout,
                idle_timeout,
                open: Mutex::default(),
                open_count: AtomicUsize::new(0),
                closed: Notify::new(),
            }),
        }
    }

    /// How many connections are open now, across every listener.
    pub fn open(&self) -> usize {
        self.inner.open_count.load(Ordering::Acquire)
    }

    /// Waits until at most `count` connections are open (for tests and the drain).
    pub async fn wait_until_at_most(&self, count: usize) {
        loop {
            let closed = self.inner.closed.notified();
            tokio::pin!(closed);
            // Register before checking, so a close in between is not missed.
            closed.as_mut().enable();
            if self.open() <= count {
                return;
            }
            closed.await;
        }
    }

    /// The connections accepted from `listener`, each holding one permit while it is open.
    ///
    /// The stream never yields an error: accept errors are logged and retried,
    /// after a pause when the process is out of resources.
    pub fn accept(&self, listener: TcpListener) -> impl Stream<Item = Result<LimitedIo, io::Error>> + use<> {
        futures::stream::unfold((listener, self.clone()), |(listener, connections)| async move {
            loop {
                // Take the permit first: at the limit we stop calling accept at all.
                let permit = Arc::clone(&connections.inner.permits).acquire_owned().await.ok()?;
                match listener.accept().await {
                    Ok((tcp, _)) => {
                        // Nagle off: `serve_with_incoming` ignores the builder's `tcp_nodelay`,
                        // and small gRPC frames must not wait for ACKs. A socket that refuses
                        // is served anyway, only slower.
                        let _ = tcp.set_nodelay(true);
                        let io = connections.wrap(tcp, permit);
                        return Some((Ok(io), (listener, connections)));
                    }
                    Err(error) if is_per_connection(&error) => {
                        tracing::debug!(%error, "accept: connection failed before it was accepted");
                    }
                    Err(error) => {
                        tracing::warn!(%error, "accept failed; pausing before the next accept");
                        tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    }
                }
            }
        })
    }

    fn wrap(&self, tcp: TcpStream, permit: OwnedSemaphorePermit) -> LimitedIo {
        let inner = &self.inner;
        let info = tcp.connect_info();
        // Only the idle timeout needs the table of connections.
        let key = inner.idle_timeout.and(info.local_addr.zip(info.remote_addr));
        let activity = Arc::new(Activity::default());
        if let Some(key) = key {
            lock(&inner.open).insert(key, Arc::downgrade(&activity));
        }
        let registration = key.map(|key| Registration {
            key,
            activity: Arc::downgrade(&activity),
            connections: self.clone(),
        });
        let now = Instant::now();
        inner.open_count.fetch_add(1, Ordering::AcqRel);
        LimitedIo {
            tcp,
            preface_left: PREFACE_LEN,
            handshake: Some(Box::pin(tokio::time::sleep_until(now + inner.handshake_timeout))),
            idle: inner.idle_timeout.map(|timeout| IdleWatch {
                timeout,
                timer: Box::pin(tokio::time::sleep_until(now + timeout)),
            }),
            activity,
            _registration: registration,
            _permit: Permit { permit: Some(permit), connections: self.clone() },
        }
    }

    /// Marks a call on the connection `key` as in flight until the guard is dropped.
    fn call_started(&self, key: ConnKey) -> Option<CallGuard> {
        // Only the idle timeout reads the call counts: without it, skip the table.
        self.inner.idle_timeout?;
        let activity = lock(&self.inner.open).get(&key)?.upgrade()?;
        let mut state = lock(&activity.0);
        state.calls += 1;
        state.idle_since = None;
        drop(state);
        Some(CallGuard(activity))
    }
}

/// Errors that concern only the connection being accepted, not the listener.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// Locks `mutex`, ignoring poisoning: the data are counters that stay consistent.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the idle timeout needs to know about one connection's calls.
#[derive(Debug)]
struct Activity(Mutex<ActivityState>);

#[derive(Debug)]
struct ActivityState {
    calls: usize,
    /// When the last call ended (or the connection opened); `None` while calls are in flight.
    idle_since: Option<Instant>,
}

impl Default for Activity {
    fn default() -> Self {
        Self(Mutex::new(ActivityState { calls: 0, idle_since: Some(Instant::now()) }))
    }
}

/// One call in flight on a connection.
#[derive(Debug)]
struct CallGuard(Arc<Activity>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        let mut state = lock(&self.0.0);
        state.calls -= 1;
        if state.calls == 0 {
            state.idle_since = Some(Instant::now());
        }
    }
}

/// Removes a connection from the table when it closes.
#[derive(Debug)]
struct Registration {
    key: ConnKey,
    activity: Weak<Activity>,
    connections: Connections,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut open = lock(&self.connections.inner.open);
        // A new connection may already reuse the address pair: remove only our own entry.
        if open.get(&self.key).is_some_and(|entry| entry.ptr_eq(&self.activity)) {
            open.remove(&self.key);
        }
    }
}

#[derive(Debug)]
struct IdleWatch {
    timeout: Duration,
    timer: Pin<Box<Sleep>>,
}

/// An accepted TCP connection under the connection-level limits.
///
/// The timeouts are enforced on reads: hyper always has a read pending on an
/// HTTP/2 connection, so an expired timer fails that read and hyper closes the
/// connection.
#[derive(Debug)]
pub struct LimitedIo {
    tcp: TcpStream,
    preface_left: usize,
    handshake: Option<Pin<Box<Sleep>>>,
    idle: Option<IdleWatch>,
    activity: Arc<Activity>,
    _registration: Option<Registration>,
    _permit: Permit,
}

/// A connection's share of `--max-connections`; dropping it lets another in.
#[derive(Debug)]
struct Permit {
    permit: Option<OwnedSemaphorePermit>,
    connections: Connections,
}

impl Drop for Permit {
    fn drop(&mut self) {
        // Release first, so the woken waiters see the new count.
        drop(self.permit.take());
        self.connections.inner.open_count.fetch_sub(1, Ordering::AcqRel);
        self.connections.inner.closed.notify_waiters();
    }
}

impl LimitedIo {
    /// Fails once a timeout has passed; otherwise registers the timers' wake-ups.
    fn check_timeouts(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if let Some(handshake) = &mut self.handshake
            && handshake.as_mut().poll(cx).is_ready()
        {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no HTTP/2 preface before the handshake timeout",
            ));
        }
        if let Some(idle) = &mut self.idle {
            while idle.timer.as_mut().poll(cx).is_ready() {
                let idle_since = lock(&self.activity.0).idle_since;
                let now = Instant::now();
                match idle_since {
                    Some(since) if now >= since + idle.timeout => {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "connection idle for too long"));
                    }
                    Some(since) => idle.timer.as_mut().reset(since + idle.timeout),
                    // Calls in flight: look again one timeout from now.
                    None => idle.timer.as_mut().reset(now + idle.timeout),
                }
            }
        }
        Ok(())
    }
}

impl AsyncRead for LimitedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.tcp).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                if this.handshake.is_some() {
                    this.preface_left = this.preface_left.saturating_sub(read);
                    if this.preface_left == 0 {
                        this.handshake = None;
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => match this.check_timeouts(cx) {
                Ok(()) => Poll::Pending,
                Err(error) => Poll::Ready(Err(error)),
            },
        }
    }
}

impl AsyncWrite for LimitedIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

impl Connected for LimitedIo {
    // The plain TCP info, so `Request::remote_addr` keeps working.
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.tcp.connect_info()
    }
}

/// Counts each call on its connection, from request to the end of the response body.
#[derive(Debug, Clone)]
pub struct TrackCallsLayer {
    connections: Connections,
}

impl TrackCallsLayer {
    /// Tracks calls on the connections of `connections`.
    pub fn new(connections: Connections) -> Self {
        Self { connections }
    }
}

impl<S> Layer<S> for TrackCallsLayer {
    type Service = TrackCalls<S>;

    fn layer(&self, inner: S) -> Self::Service {
        TrackCalls { inner, connections: self.connections.clone() }
    }
}

/// The service made by [`TrackCallsLayer`].
#[derive(Debug, Clone)]
pub struct TrackCalls<S> {
    inner: S,
    connections: Connections,
}

impl<S, B> Service<Request<B>> for TrackCalls<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let guard = connection_key(&request).and_then(|key| self.connections.call_started(key));
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(match guard {
                Some(guard) => response.map(|body| Body::new(TrackedBody { inner: body, _call: guard })),
                None => response,
            })
        })
    }
}

/// The address pair tonic attached to the request, over plain TCP or TLS.
fn connection_key<B>(request: &Request<B>) -> Option<ConnKey> {
    let extensions = request.extensions();
    let info = extensions
        .get::<TcpConnectInfo>()
        .or_else(|| extensions.get::<TlsConnectInfo<TcpConnectInfo>>().map(TlsConnectInfo::get_ref))?;
    info.local_addr.zip(info.remote_addr)
}

/// A response body that keeps its call counted until hyper drops it.
struct TrackedBody {
    inner: Body,
    _call: CallGuard,
}

impl http_body::Body for TrackedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
