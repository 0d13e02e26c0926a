//! The load generator's HTTP/2 connections: dialled (TCP, TLS with ALPN h2)
//! and handshaken straight on `h2`, with the server's SETTINGS read before
//! the first call, and their streams kept within the server's limit by the
//! calls themselves.

use std::{cell::Cell, rc::Rc, sync::Arc, time::Duration};

use bytes::Bytes;
use h2::client::SendRequest;
use tokio::{net::TcpStream, time::Instant};
use tokio_rustls::{
    TlsConnector,
    rustls::{ClientConfig, pki_types::ServerName},
};

use crate::{
    channel::{Target, invalid, wait_before_retry},
    error::{ClientError, one_line},
};

/// Flow-control windows large enough that the load generator never waits for WINDOW_UPDATEs.
const STREAM_WINDOW: u32 = 1 << 20;
/// See [`STREAM_WINDOW`].
const CONNECTION_WINDOW: u32 = 1 << 24;

/// Streams the load generator remembers having cancelled (at their deadline),
/// so that the server's frames still arriving on them are dropped quietly;
/// h2 remembers 50, for a second, and answers a frame on a forgotten stream
/// with RST_STREAM(STREAM_CLOSED). It also closes the connection (GOAWAY
/// ENHANCE_YOUR_CALM) after 1,024 of those answers, a limit the generator
/// turns off: an overloaded server answers cancelled calls seconds late, and
/// the generator would close every connection of its own. (16,384 cancelled
/// streams cost a few MiB.)
const CANCELLED_STREAMS: usize = 16 * 1024;

/// One HTTP/2 connection to the server, cheap to clone into each call loop.
#[derive(Clone)]
pub(super) struct Connection {
    pub(super) send: SendRequest<Bytes>,
    streams: Rc<Streams>,
}

/// The streams open on a connection, kept within the server's
/// SETTINGS_MAX_CONCURRENT_STREAMS by the calls themselves.
///
/// Why not h2's own queue: a stream over the limit waits in h2 with its
/// HEADERS already encoded, and when its call is cancelled at the deadline h2
/// still sends those HEADERS, then RST_STREAM. Under overload every late call
/// would reach the server only to be cancelled, and the server's Rapid Reset
/// guard takes that for an attack and closes the connection. grpc-go's client
/// waits for a free stream before it makes one (`NewStream`'s stream quota),
/// so a call whose deadline passes while it waits never leaves the client; so
/// does this one.
#[derive(Default)]
struct Streams {
    open: Cell<usize>,
    freed: tokio::sync::Notify,
}

/// A stream slot of a [`Connection`], given back when the call ends.
pub(super) struct StreamSlot(Rc<Streams>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.open.set(self.0.open.get() - 1);
        self.0.freed.notify_one();
    }
}

impl Connection {
    fn new(send: SendRequest<Bytes>) -> Self {
        Self { send, streams: Rc::default() }
    }

    /// Waits, first come first served, until the server allows one more stream.
    pub(super) async fn stream_slot(&self) -> StreamSlot {
        loop {
            let freed = self.streams.freed.notified();
            // The server's SETTINGS are in (`handshake`): h2 has its limit.
            // None (0) when the connection ended before them: the call then
            // fails on it as on any closed connection.
            let limit = self.send.current_max_send_streams();
            if self.streams.open.get() < limit || limit == 0 {
                self.streams.open.set(self.streams.open.get() + 1);
                return StreamSlot(Rc::clone(&self.streams));
            }
            freed.await;
        }
    }
}

/// Opens an HTTP/2 connection to `target` (whose URL is `addr`) and drives it
/// on the current runtime; with `wait_until` (`--wait-for-ready`), tries again
/// until then while the server cannot be reached.
pub(super) async fn connect(
    addr: &str,
    target: &Target,
    tls: Option<&Arc<ClientConfig>>,
    connect_timeout: Duration,
    wait_until: Option<Instant>,
) -> Result<Connection, ClientError> {
    loop {
        match connect_once(addr, target, tls, connect_timeout).await {
            Err(ClientError::Connect { .. }) if wait_before_retry(wait_until).await => {}
            result => return result,
        }
    }
}

async fn connect_once(
    addr: &str,
    target: &Target,
    tls: Option<&Arc<ClientConfig>>,
    connect_timeout: Duration,
) -> Result<Connection, ClientError> {
    let failed = |reason: String| ClientError::Connect { addr: addr.to_owned(), reason };
    let tcp = tokio::time::timeout(connect_timeout, TcpStream::connect((target.host.as_str(), target.port)))
        .await
        .map_err(|_| failed(format!("timed out after {connect_timeout:?}")))?
        .map_err(|error| failed(one_line(&error)))?;
    // Small frames must not wait for ACKs (Nagle), or latency measures the kernel.
    tcp.set_nodelay(true).map_err(|error| failed(one_line(&error)))?;
    let Some(tls) = tls else { return handshake(tcp, connect_timeout).await.map_err(failed) };
    let name = ServerName::try_from(target.host.clone())
        .map_err(|error| failed(format!("not a TLS server name: {error}")))?;
    let connector = TlsConnector::from(Arc::clone(tls));
    let stream = tokio::time::timeout(connect_timeout, connector.connect(name, tcp))
        .await
        .map_err(|_| failed(format!("TLS handshake timed out after {connect_timeout:?}")))?
        .map_err(|error| failed(format!("TLS handshake: {}", one_line(&error))))?;
    if stream.get_ref().1.alpn_protocol() != Some(b"h2") {
        return Err(failed("the server did not agree to HTTP/2 (ALPN h2)".into()));
    }
    handshake(stream, connect_timeout).await.map_err(failed)
}

/// The HTTP/2 handshake on `io`, the connection then driven on the current
/// runtime; returns once the server's SETTINGS are in (within `timeout`), so
/// that the first calls already keep to its limit of concurrent streams, or
/// once the connection has ended, which its calls then report as for any
/// connection the server closes.
///
/// The connection allows no stream until then (h2 takes the server's
/// SETTINGS_MAX_CONCURRENT_STREAMS from them, or no limit when they name
/// none), and its driver says when h2 has applied them: grpc-go's client
/// waits for the server's SETTINGS too. Not a PING round trip: some servers
/// never answer a PING (pajamax, one of `bench/run`'s peers).
async fn handshake<T>(io: T, timeout: Duration) -> Result<Connection, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (send, mut connection) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .initial_max_send_streams(0)
        .max_concurrent_reset_streams(CANCELLED_STREAMS)
        .max_local_error_reset_streams(None)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(|error| one_line(&error))?;
    let (settings_in, settings) = tokio::sync::oneshot::channel();
    let (mut settings_in, limit) = (Some(settings_in), send.clone());
    tokio::spawn(std::future::poll_fn(move |cx| {
        // h2 applies the server's SETTINGS while it is polled.
        let ended = std::pin::Pin::new(&mut connection).poll(cx);
        if settings_in.is_some() && limit.current_max_send_streams() > 0 {
            let _ = settings_in.take().map(|sender| sender.send(()));
        }
        // The connection ends with the run or with an error each call reports itself.
        ended.map(drop)
    }));
    match tokio::time::timeout(timeout, settings).await {
        Ok(_) => Ok(Connection::new(send)),
        Err(_) => Err(format!("no SETTINGS allowing a stream from the server within {timeout:?}")),
    }
}

/// The target of `addr` (a URL): `http://` (plain text) or `https://` (TLS).
pub(super) fn bench_target(addr: &str) -> Result<Target, ClientError> {
    let target = Target::parse(addr)?;
    if !matches!(target.uri.scheme_str(), Some("http" | "https")) {
        return Err(invalid(addr, "bench supports http:// and https:// addresses only"));
    }
    Ok(target)
}
