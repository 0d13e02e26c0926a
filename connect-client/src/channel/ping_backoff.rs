//! Keepalive that backs off when the server says the client pings too often,
//! as grpc-go's client does.
//!
//! A server that enforces a keepalive policy (grpc-go's `EnforcementPolicy`,
//! connect-server's `--keepalive-min-interval`) closes a connection that pings
//! too often with GOAWAY `ENHANCE_YOUR_CALM` and the debug data
//! `too_many_pings`. The client then doubles its interval for that server, so
//! its next connection is not closed for the same reason; the calls on the
//! closed connection end `UNAVAILABLE`, as they would with any client.
//!
//! How: hyper reads that GOAWAY but tells no one its debug data (the calls on
//! the connection see a broken pipe), so [`WatchGoAway`] walks the headers of
//! the frames the server sends, above TLS ([`Dialer`] makes the connection
//! instead of tonic, so the watcher sees plain frames), and notes the GOAWAY.
//! tonic fixes a channel's keepalive interval when the channel is made, so
//! [`BackingOff`] makes a new channel with the doubled interval for the next
//! call.

use std::{
    io,
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use futures::future::BoxFuture;
use http::{Request, Response, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::{
    body::Body,
    transport::{Channel, Endpoint},
};
use tower::{BoxError, Service, ServiceExt};

use super::{
    Keepalive, Options,
    dial::{Dialer, Io},
    target::Target,
};
use crate::{error::one_line, output::Output};

/// Length of an HTTP/2 frame header (RFC 9113, section 4.1).
const HEADER_LEN: usize = 9;

/// The GOAWAY frame type.
const GOAWAY: u8 = 0x7;

/// The `ENHANCE_YOUR_CALM` error code.
const ENHANCE_YOUR_CALM: [u8; 4] = 0xb_u32.to_be_bytes();

/// The debug data of the GOAWAY that asks a client to ping less (grpc-go's words).
const TOO_MANY_PINGS: &[u8] = b"too_many_pings";

/// Length of that GOAWAY's payload: last stream id, error code, debug data.
const PAYLOAD_LEN: usize = 8 + TOO_MANY_PINGS.len();

/// One server's keepalive interval, doubled each time it says `too_many_pings`.
#[derive(Debug)]
struct Interval {
    now: Mutex<Duration>,
    /// Set when the interval changed and the channel has not been made anew yet.
    changed: AtomicBool,
    /// Where the line that says so goes.
    output: Output,
}

impl Interval {
    fn get(&self) -> Duration {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The server said `too_many_pings`: double the interval and say so.
    fn double(&self) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now = now.saturating_mul(2);
        self.changed.store(true, Ordering::Release);
        let shown = humantime::format_duration(*now);
        self.output.error_line(format_args!(
            "the server closed the connection with GOAWAY too_many_pings: pinging every {shown} from now on"
        ));
    }
}

/// A transport to one server whose keepalive backs off; see the module docs.
#[derive(Clone)]
pub(crate) struct BackingOff {
    shared: Arc<Shared>,
}

struct Shared {
    /// The endpoint without its keepalive interval, which changes.
    endpoint: Endpoint,
    keepalive: Keepalive,
    dialer: Dialer,
    interval: Arc<Interval>,
    /// The channel calls go to, made anew when the interval changes.
    channel: Mutex<Channel>,
}

impl BackingOff {
    /// Connects to `target` once, so an unreachable server is reported before
    /// any call (retried until ready with `--wait-for-ready`), pinging as `keepalive` says.
    pub(crate) async fn connect(
        target: &Target,
        tls: Option<tokio_rustls::rustls::ClientConfig>,
        options: &Options,
        keepalive: Keepalive,
        output: &Output,
    ) -> Result<Self, String> {
        let dialer = Dialer::new(target, tls, options.connect_timeout)?;
        // The dialer makes TLS itself, so tonic is given the plain-text URL; the
        // calls still carry the target's scheme and authority.
        let url = match target.host.contains(':') {
            true => format!("http://[{}]:{}", target.host, target.port),
            false => format!("http://{}:{}", target.host, target.port),
        };
        let endpoint = Endpoint::from_shared(url)
            .map_err(|error| one_line(&error))?
            .origin(target.uri.clone())
            .keep_alive_timeout(keepalive.timeout)
            .keep_alive_while_idle(true);
        let interval = Arc::new(Interval {
            now: Mutex::new(keepalive.interval),
            changed: AtomicBool::new(false),
            output: output.clone(),
        });
        let first_endpoint = endpoint.clone().http2_keep_alive_interval(keepalive.interval);
        let first = super::connect_retrying(options, || {
            first_endpoint
                .connect_with_connector(Watched { dialer: dialer.clone(), interval: Arc::clone(&interval) })
        })
        .await?;
        let shared = Shared { endpoint, keepalive, dialer, interval, channel: Mutex::new(first) };
        Ok(Self { shared: Arc::new(shared) })
    }

    /// The channel for the next call: made anew if the interval changed.
    fn channel(&self) -> Channel {
        let shared = &self.shared;
        let mut channel = shared.channel.lock().unwrap_or_else(PoisonError::into_inner);
        if shared.interval.changed.swap(false, Ordering::AcqRel) {
            let endpoint = shared.endpoint.clone().http2_keep_alive_interval(shared.interval.get());
            let connector = Watched { dialer: shared.dialer.clone(), interval: Arc::clone(&shared.interval) };
            *channel = endpoint.connect_with_connector_lazy(connector);
        }
        channel.clone()
    }
}

impl std::fmt::Debug for BackingOff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shared = &self.shared;
        f.debug_struct("BackingOff")
            .field("dialer", &shared.dialer)
            .field("keepalive", &shared.keepalive)
            .field("interval", &shared.interval.get())
            .finish_non_exhaustive()
    }
}

impl Service<Request<Body>> for BackingOff {
    type Response = Response<Body>;
    type Error = tonic::transport::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The channel of the call is only chosen in `call`; it waits for readiness there.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let channel = self.channel();
        Box::pin(async move { channel.oneshot(request).await })
    }
}

/// The connector tonic is given: the dialer's connections, watched for `too_many_pings`.
#[derive(Clone)]
struct Watched {
    dialer: Dialer,
    interval: Arc<Interval>,
}

/// A connection as [`Watched`] gives it to tonic.
type WatchedIo = TokioIo<WatchGoAway<Box<dyn Io>>>;

impl Service<Uri> for Watched {
    type Response = WatchedIo;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<WatchedIo, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    /// Dials the target itself; the URI tonic passes is the plain-text one it was given.
    fn call(&mut self, _uri: Uri) -> Self::Future {
        let Self { dialer, interval } = self.clone();
        Box::pin(async move {
            let io = dialer.dial().await?;
            Ok(TokioIo::new(WatchGoAway { io, frames: Frames::default(), interval }))
        })
    }
}

/// A connection's byte stream, whose incoming frames are watched for the
/// GOAWAY that says `too_many_pings`. Nothing is copied or changed: the
/// watcher reads frame headers as they pass (a few integer operations per
/// frame) and keeps the payload of a GOAWAY of exactly that length.
pub(crate) struct WatchGoAway<IO> {
    io: IO,
    frames: Frames,
    interval: Arc<Interval>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for WatchGoAway<IO> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if this.frames.walk(&buf.filled()[before..]) {
            this.interval.double();
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for WatchGoAway<IO> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Where the server's frames stand: which header bytes have arrived, how much
/// of the current payload is left, and the payload of a GOAWAY worth reading.
#[derive(Debug, Default)]
struct Frames {
    header: [u8; HEADER_LEN],
    header_len: usize,
    payload_left: usize,
    /// The payload so far of a GOAWAY as long as the one that says `too_many_pings`.
    goaway: Option<([u8; PAYLOAD_LEN], usize)>,
}

impl Frames {
    /// Walks `bytes`, the next bytes from the server; true when they end a
    /// GOAWAY `ENHANCE_YOUR_CALM` with the debug data `too_many_pings`.
    fn walk(&mut self, mut bytes: &[u8]) -> bool {
        let mut told = false;
        while !bytes.is_empty() {
            if self.payload_left == 0 {
                let take = (HEADER_LEN - self.header_len).min(bytes.len());
                self.header[self.header_len..self.header_len + take].copy_from_slice(&bytes[..take]);
                self.header_len += take;
                bytes = &bytes[take..];
                if self.header_len == HEADER_LEN {
                    self.header_len = 0;
                    let [a, b, c, kind, ..] = self.header;
                    self.payload_left = usize::from(a) << 16 | usize::from(b) << 8 | usize::from(c);
                    self.goaway =
                        (kind == GOAWAY && self.payload_left == PAYLOAD_LEN).then_some(([0; PAYLOAD_LEN], 0));
                }
                continue;
            }
            let take = self.payload_left.min(bytes.len());
            if let Some((payload, len)) = &mut self.goaway {
                payload[*len..*len + take].copy_from_slice(&bytes[..take]);
                *len += take;
            }
            self.payload_left -= take;
            bytes = &bytes[take..];
            if self.payload_left == 0
                && let Some((payload, _)) = self.goaway.take()
            {
                told |= payload[4..8] == ENHANCE_YOUR_CALM && &payload[8..] == TOO_MANY_PINGS;
            }
        }
        told
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame: its header, then `payload`.
    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
        let mut frame = vec![len[1], len[2], len[3], kind, 0, 0, 0, 0, 0];
        frame.extend_from_slice(payload);
        frame
    }

    fn goaway(code: u32, debug: &[u8]) -> Vec<u8> {
        let mut payload = 5_u32.to_be_bytes().to_vec();
        payload.extend_from_slice(&code.to_be_bytes());
        payload.extend_from_slice(debug);
        frame(GOAWAY, &payload)
    }

    /// The server's bytes: SETTINGS, a DATA frame that holds the GOAWAY's
    /// bytes (it must not count), a PING, then `last`.
    fn server_bytes(last: &[u8]) -> Vec<u8> {
        let mut bytes = frame(0x4, &[0, 3, 0, 0, 0, 100]);
        bytes.extend(frame(0x0, &goaway(0xb, TOO_MANY_PINGS)));
        bytes.extend(frame(0x6, &[7; 8]));
        bytes.extend_from_slice(last);
        bytes
    }

    /// How many times the walker says `too_many_pings` for `bytes` cut into pieces of `piece`.
    fn told(bytes: &[u8], piece: usize) -> usize {
        let mut frames = Frames::default();
        bytes.chunks(piece).filter(|chunk| frames.walk(chunk)).count()
    }

    #[test]
    fn the_goaway_that_says_too_many_pings_is_seen_however_the_bytes_are_cut() {
        let bytes = server_bytes(&goaway(0xb, TOO_MANY_PINGS));
        for piece in 1..=bytes.len() {
            assert_eq!(told(&bytes, piece), 1, "in pieces of {piece}");
        }
    }

    #[test]
    fn other_goaways_and_the_same_bytes_inside_a_frame_are_not() {
        for last in [
            goaway(0x0, TOO_MANY_PINGS),
            goaway(0xb, b"too_many_pingz"),
            goaway(0xb, b"too_many_pings!"),
            goaway(0xb, b""),
            Vec::new(),
        ] {
            let bytes = server_bytes(&last);
            for piece in [1, 5, 9, bytes.len()] {
                assert_eq!(told(&bytes, piece), 0, "{last:?} in pieces of {piece}");
            }
        }
    }
}
