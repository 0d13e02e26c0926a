//! HTTP on one connection, with hyper: HTTP/2 (prior knowledge, or ALPN
//! `h2`) and, when a protocol that browsers and `curl` speak is on, HTTP/1.1
//! told apart by the first bytes (hyper-util's `auto`); the builder with the
//! limits, a graceful end (GOAWAY, or `Connection: close`) at the drain or at
//! the connection's age, and the bridge from hyper's service to the
//! connection's tower service.

use std::{cell::RefCell, convert::Infallible, future::poll_fn, pin::pin, time::Duration};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::{rt::TokioIo, server::conn::auto};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    time::Instant,
};
use tower::Service;

use super::{
    call_set::{CallSet, ConnectionExecutor},
    coarse_timer::CoarseTimer,
    drain::DrainWatch,
    wake_at::WakeAt,
};
/// What HTTP/2 allows one connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Http2Limits {
    /// Most concurrent streams (calls).
    pub(crate) max_concurrent_streams: u32,
    /// Most streams the server may reset for client errors before it closes the connection.
    pub(crate) max_local_error_reset_streams: usize,
    /// Most streams a client may reset before they are accepted, before the connection closes.
    pub(crate) max_pending_accept_reset_streams: usize,
    /// How often to ping the peer.
    pub(crate) keepalive_interval: Duration,
    /// How long a ping may go unanswered.
    pub(crate) keepalive_timeout: Duration,
}

/// hyper's server builder with `limits` (the age is enforced per connection,
/// by [`serve_http`] and the connection's lifetime tap): HTTP/2 only, or
/// HTTP/1.1 too when `http1` is given (its headers must arrive within
/// `header_timeout`).
pub(crate) fn builder(limits: Http2Limits, http1: Option<Http1Limits>) -> auto::Builder<ConnectionExecutor> {
    let mut builder = auto::Builder::new(ConnectionExecutor);
    match http1 {
        None => builder = builder.http2_only(),
        Some(http1) => {
            builder
                .http1()
                .timer(CoarseTimer::default())
                .header_read_timeout(http1.header_timeout)
                .keep_alive(true)
                .max_buf_size(http1.max_buf_size)
                .auto_date_header(false);
        }
    }
    builder
        .http2()
        .timer(CoarseTimer::default())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_local_error_reset_streams(Some(limits.max_local_error_reset_streams))
        .max_pending_accept_reset_streams(Some(limits.max_pending_accept_reset_streams))
        .max_send_buf_size(MAX_SEND_BUF_SIZE)
        .keep_alive_interval(Some(limits.keepalive_interval))
        .keep_alive_timeout(limits.keepalive_timeout)
        // gRPC has no use for a `date` header, and it changes every second, so HPACK
        // cannot keep it in its table: bytes and encoding work on every response.
        .auto_date_header(false);
    builder
}

/// What h2 may hold of one stream's response data not yet written to the
/// socket: a default flow-control window.
///
/// hyper's default is 400 KiB a stream: a client that grants every window
/// and never reads its socket made the server hold 2.7 GiB with 4,096 server
/// streams admitted (RELIABILITY.md); at 64 KiB it holds 719 MiB. Less costs
/// the streams that read: at 32 KiB (537 MiB in that flood) a stream of 1,000
/// messages took 1.15x the CPU, its encoded replies no longer fitting at once
/// (BENCHMARKS.md).
const MAX_SEND_BUF_SIZE: usize = 64 * 1024;

/// What HTTP/1.1 allows one connection, when it is on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Http1Limits {
    /// How long the request line and headers may take to arrive.
    pub(crate) header_timeout: Duration,
    /// The largest read buffer (which bounds the request line and headers).
    pub(crate) max_buf_size: usize,
}

/// Serves HTTP on `io` until the client or the server closes it; at the
/// drain or at `age_limit`, the connection is asked to go away and its calls finish.
pub(crate) async fn serve_http<IO, S: HttpService>(
    io: IO,
    service: S,
    http: &auto::Builder<ConnectionExecutor>,
    age_limit: Instant,
    mut drain: DrainWatch,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut connection = pin!(http.serve_connection(TokioIo::new(io), PerConnection(RefCell::new(service))));
    let mut age = WakeAt::new(age_limit);
    let mut going_away = false;
    let mut calls = CallSet::default();
    let result = poll_fn(|cx| {
        if !going_away && (drain.poll_started(cx) || age.poll_expired(cx)) {
            going_away = true;
            connection.as_mut().graceful_shutdown();
        }
        calls.poll_connection(cx, connection.as_mut())
    })
    .await;
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// What serving a connection asks of its service: a tower service for hyper's
/// requests that never fails, whose future and response body can move to the
/// connection's task. (One name for the bounds every function here repeats.)
pub(crate) trait HttpService:
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

impl<S, B> HttpService for S
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
