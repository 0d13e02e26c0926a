//! Keepalive enforcement: how often a client may ping, as grpc-go's
//! `keepalive.EnforcementPolicy` (`internal/transport/http2_server.go`,
//! `handlePing`) with its defaults.
//!
//! While the connection has calls in flight a client may send a PING once
//! per `--keepalive-min-interval` (5 minutes); with none, once per 2 hours
//! unless `--keepalive-permit-without-calls`. Each faster PING is a strike
//! (the first PING of a connection never is); the strikes start again from
//! zero once the server sends HEADERS or DATA (and the PING after that is
//! not judged); the third strike gets `GOAWAY(ENHANCE_YOUR_CALM)` with debug
//! data `too_many_pings`, and the connection closes.
//!
//! How: h2 answers PINGs itself and its public API sends a GOAWAY without
//! debug data, so [`EnforcePings`] watches the frames instead. It wraps the
//! stream hyper reads and writes (above TLS, where the frames are plain),
//! walks the 9-byte frame headers of both directions without copying
//! anything (a few integer operations per frame, a clock read per PING),
//! counts the client's PINGs on the read side and notes the server's HEADERS
//! and DATA on the write side. When the policy is broken it writes its own
//! GOAWAY at the next frame boundary of the write stream, shuts the stream
//! down and fails every later read and write, so hyper closes the
//! connection. A patch to h2 carried with `[patch.crates-io]` would do the
//! same from inside, but it would pin h2 to a fork for one counter; this
//! needs no fork, and an HTTP/1.1 connection (no preface) is left alone.
//!
//! Not a [`super::tap::Tap`]: taps sit below TLS and see only byte counts,
//! and none of them writes bytes of its own into the stream.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    time::Instant,
};

use super::connections::ConnectionCalls;

/// How often a client may ping without calls in flight, unless permitted
/// (grpc-go's `defaultPingTimeout`).
const WITHOUT_CALLS: Duration = Duration::from_secs(2 * 60 * 60);

/// Strikes a connection may have; the next one closes it (grpc-go's `maxPingStrikes`).
const MAX_STRIKES: u8 = 2;

/// The HTTP/2 client connection preface.
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Length of an HTTP/2 frame header.
const HEADER_LEN: usize = 9;

/// HTTP/2 frame types and flags this module looks at (RFC 9113, section 6).
mod frame {
    pub(super) const DATA: u8 = 0x0;
    pub(super) const HEADERS: u8 = 0x1;
    pub(super) const PING: u8 = 0x6;
    pub(super) const GOAWAY: u8 = 0x7;
    /// The ACK flag of PING.
    pub(super) const ACK: u8 = 0x1;
    /// `ENHANCE_YOUR_CALM`.
    pub(super) const ENHANCE_YOUR_CALM: u32 = 0xb;
}

/// The GOAWAY's debug data, as grpc-go sends it (its clients look for it to
/// back their keepalive off).
const TOO_MANY_PINGS: &[u8] = b"too_many_pings";

/// Length of the GOAWAY frame: header, last stream id, error code, debug data.
const GOAWAY_LEN: usize = HEADER_LEN + 8 + TOO_MANY_PINGS.len();

/// What a client may do (`--keepalive-min-interval`, `--keepalive-permit-without-calls`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PingPolicy {
    /// Least time between two PINGs while calls are in flight.
    pub(crate) min_interval: Duration,
    /// Whether the same interval holds without calls in flight (else 2 hours).
    pub(crate) permit_without_calls: bool,
}

/// A connection's stream with [`PingPolicy`] enforced on it (`None`: not enforced).
#[derive(Debug)]
pub(crate) struct EnforcePings<IO> {
    io: IO,
    /// `None` when the policy is off, or the connection is not HTTP/2.
    state: Option<Box<State>>,
}

/// What the policy keeps per connection. Boxed: a connection that is not
/// policed (HTTP/1.1, policy off) pays one pointer.
#[derive(Debug)]
struct State {
    policy: PingPolicy,
    calls: Arc<ConnectionCalls>,
    /// Preface bytes still expected from the client.
    preface_left: u8,
    reads: Frames,
    writes: Frames,
    last_ping: Option<Instant>,
    strikes: u8,
    /// The server sent HEADERS or DATA since the last PING.
    reset_strikes: bool,
    /// The highest stream the client opened (HEADERS), and that at the last PING.
    last_stream: u32,
    last_stream_at_ping: u32,
    /// The GOAWAY, once the policy is broken, and how much of it is written.
    goaway: Option<([u8; GOAWAY_LEN], usize)>,
    /// The GOAWAY is written and the stream shut down.
    closed: bool,
}

impl<IO> EnforcePings<IO> {
    /// `io`, with `policy` enforced (when given) for the calls of `calls`.
    pub(crate) fn new(io: IO, policy: Option<PingPolicy>, calls: &Arc<ConnectionCalls>) -> Self {
        let state = policy.map(|policy| {
            Box::new(State {
                policy,
                calls: Arc::clone(calls),
                preface_left: PREFACE.len() as u8,
                reads: Frames::default(),
                writes: Frames::default(),
                last_ping: None,
                strikes: 0,
                reset_strikes: false,
                last_stream: 0,
                last_stream_at_ping: 0,
                goaway: None,
                closed: false,
            })
        });
        Self { io, state }
    }
}

/// Where one direction of the stream is in its frames: how much of the
/// current frame header has been seen, and how many payload bytes follow.
#[derive(Debug, Default)]
struct Frames {
    header: [u8; HEADER_LEN],
    header_len: u8,
    payload_left: u32,
}

/// A frame header: type, flags and stream id (the payload is skipped).
#[derive(Debug, Clone, Copy)]
struct Header {
    kind: u8,
    flags: u8,
    stream: u32,
}

impl Frames {
    /// At a frame boundary: nothing of the next frame seen yet.
    fn at_boundary(&self) -> bool {
        self.header_len == 0 && self.payload_left == 0
    }

    /// Bytes left in the current frame, header included (0 at a boundary).
    fn left_in_frame(&self) -> usize {
        if self.header_len == 0 {
            self.payload_left as usize
        } else {
            HEADER_LEN - usize::from(self.header_len)
        }
    }

    /// Walks `bytes`, calling `on_header` for each frame header completed in them.
    fn walk(&mut self, mut bytes: &[u8], mut on_header: impl FnMut(Header)) {
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let skip = bytes.len().min(self.payload_left as usize);
                // `skip` is at most `payload_left`, a u32.
                self.payload_left -= skip as u32;
                bytes = &bytes[skip..];
                continue;
            }
            let have = usize::from(self.header_len);
            let take = bytes.len().min(HEADER_LEN - have);
            self.header[have..have + take].copy_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if have + take < HEADER_LEN {
                self.header_len = (have + take) as u8;
                return;
            }
            self.header_len = 0;
            let h = &self.header;
            self.payload_left = u32::from_be_bytes([0, h[0], h[1], h[2]]);
            on_header(Header {
                kind: h[3],
                flags: h[4],
                stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
            });
        }
    }
}

impl State {
    /// The client sent `bytes`: checks the preface, then judges its PINGs.
    /// `false`: not HTTP/2, stop watching.
    fn read(&mut self, mut bytes: &[u8]) -> bool {
        if self.preface_left > 0 {
            let seen = PREFACE.len() - usize::from(self.preface_left);
            let take = bytes.len().min(usize::from(self.preface_left));
            if bytes[..take] != PREFACE[seen..seen + take] {
                return false;
            }
            self.preface_left -= take as u8;
            bytes = &bytes[take..];
        }
        let mut broken = false;
        let mut reads = std::mem::take(&mut self.reads);
        reads.walk(bytes, |header| match header.kind {
            frame::HEADERS => self.last_stream = self.last_stream.max(header.stream),
            frame::PING if header.flags & frame::ACK == 0 => broken |= self.ping(Instant::now()),
            _ => {}
        });
        self.reads = reads;
        if broken && self.goaway.is_none() {
            self.goaway = Some((goaway(self.last_stream), 0));
            tracing::info!(
                peer = self.calls.peer(),
                "too many pings: GOAWAY ENHANCE_YOUR_CALM too_many_pings"
            );
        }
        true
    }

    /// The server wrote `bytes`: notes its HEADERS and DATA.
    fn wrote(&mut self, bytes: &[u8]) {
        let reset = &mut self.reset_strikes;
        self.writes.walk(bytes, |header| {
            if header.kind == frame::HEADERS || header.kind == frame::DATA {
                *reset = true;
            }
        });
    }

    /// A PING from the client at `now`; `true` when it breaks the policy.
    fn ping(&mut self, now: Instant) -> bool {
        let last = self.last_ping.replace(now);
        if std::mem::take(&mut self.reset_strikes) {
            self.strikes = 0;
            return false;
        }
        // A stream opened since the last PING counts as a call in flight: hyper
        // hands a new stream to the service only once it has read all the
        // socket holds, so a PING right behind its call's HEADERS would
        // otherwise be judged as one without calls.
        let opened = self.last_stream != self.last_stream_at_ping;
        self.last_stream_at_ping = self.last_stream;
        let with_calls = opened || self.calls.idle_since().is_none();
        let min_interval = if with_calls || self.policy.permit_without_calls {
            self.policy.min_interval
        } else {
            WITHOUT_CALLS
        };
        if last.is_some_and(|last| now < last + min_interval) {
            self.strikes = self.strikes.saturating_add(1);
        }
        self.strikes > MAX_STRIKES
    }
}

/// `GOAWAY(last_stream, ENHANCE_YOUR_CALM, "too_many_pings")`.
fn goaway(last_stream: u32) -> [u8; GOAWAY_LEN] {
    let mut bytes = [0; GOAWAY_LEN];
    let len = (GOAWAY_LEN - HEADER_LEN) as u32;
    bytes[..3].copy_from_slice(&len.to_be_bytes()[1..]);
    bytes[3] = frame::GOAWAY;
    bytes[9..13].copy_from_slice(&last_stream.to_be_bytes());
    bytes[13..17].copy_from_slice(&frame::ENHANCE_YOUR_CALM.to_be_bytes());
    bytes[17..].copy_from_slice(TOO_MANY_PINGS);
    bytes
}

fn too_many_pings() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "too many pings: GOAWAY ENHANCE_YOUR_CALM sent")
}

impl<IO: AsyncWrite + Unpin> EnforcePings<IO> {
    /// With the policy broken and the write stream at a frame boundary:
    /// writes the GOAWAY, flushes and shuts the stream down, then fails.
    /// `None`: nothing to do (yet).
    fn poll_goaway(&mut self, cx: &mut Context<'_>) -> Option<Poll<io::Error>> {
        let state = self.state.as_mut()?;
        if state.closed {
            return Some(Poll::Ready(too_many_pings()));
        }
        let (bytes, written) = state.goaway.as_mut()?;
        if !state.writes.at_boundary() {
            return None;
        }
        let io = Pin::new(&mut self.io);
        Some(Self::send(io, cx, bytes, written).map(|result| {
            state.closed = true;
            if let Err(error) = result {
                tracing::debug!(%error, "GOAWAY too_many_pings not sent");
            }
            too_many_pings()
        }))
    }

    fn send(
        mut io: Pin<&mut IO>,
        cx: &mut Context<'_>,
        bytes: &[u8],
        written: &mut usize,
    ) -> Poll<io::Result<()>> {
        while *written < bytes.len() {
            match ready!(io.as_mut().poll_write(cx, &bytes[*written..]))? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                n => *written += n,
            }
        }
        ready!(io.as_mut().poll_flush(cx))?;
        io.poll_shutdown(cx)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for EnforcePings<IO> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(poll) = this.poll_goaway(cx) {
            return poll.map(Err);
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        if let Some(state) = &mut this.state
            && state.goaway.is_none()
            && !state.read(&buf.filled()[before..])
        {
            this.state = None;
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for EnforcePings<IO> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(poll) = this.poll_goaway(cx) {
            return poll.map(Err);
        }
        let Some(state) = &mut this.state else {
            return Pin::new(&mut this.io).poll_write(cx, buf);
        };
        // A GOAWAY waits for the frame being written to end: write no further.
        let buf =
            if state.goaway.is_some() { &buf[..buf.len().min(state.writes.left_in_frame())] } else { buf };
        let written = ready!(Pin::new(&mut this.io).poll_write(cx, buf))?;
        state.wrote(&buf[..written]);
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(state) = &mut this.state else {
            return Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        };
        if state.goaway.is_some() {
            // Rare and short: one slice at a time, up to the end of the frame.
            let first = bufs.iter().find(|buf| !buf.is_empty()).map_or(&[][..], |buf| &**buf);
            return Pin::new(this).poll_write(cx, first);
        }
        let mut left = ready!(Pin::new(&mut this.io).poll_write_vectored(cx, bufs))?;
        let written = left;
        for buf in bufs {
            let take = left.min(buf.len());
            state.wrote(&buf[..take]);
            left -= take;
            if left == 0 {
                break;
            }
        }
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(poll) = this.poll_goaway(cx) {
            return poll.map(Err);
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.state.as_ref().is_some_and(|state| state.closed) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut bytes = u32::try_from(payload.len()).unwrap().to_be_bytes()[1..].to_vec();
        bytes.extend([kind, flags]);
        bytes.extend(stream.to_be_bytes());
        bytes.extend(payload);
        bytes
    }

    fn ping() -> Vec<u8> {
        frame(frame::PING, 0, 0, &[0; 8])
    }

    fn state(min_interval: Duration, permit_without_calls: bool) -> (State, Arc<ConnectionCalls>) {
        let calls = Arc::new(ConnectionCalls::new(None));
        let policy = PingPolicy { min_interval, permit_without_calls };
        let enforced = EnforcePings::new((), Some(policy), &calls);
        (*enforced.state.unwrap(), calls)
    }

    #[test]
    fn the_third_strike_breaks_the_policy_and_the_first_ping_is_free() {
        let (mut state, calls) = state(Duration::from_secs(1), false);
        calls.call_started();
        let now = Instant::now();
        assert!(!state.ping(now));
        assert!(!state.ping(now));
        assert!(!state.ping(now));
        assert_eq!(state.strikes, 2);
        assert!(state.ping(now));
    }

    #[test]
    fn pings_the_interval_apart_are_no_strikes() {
        let (mut state, calls) = state(Duration::from_secs(1), false);
        calls.call_started();
        let start = Instant::now();
        for second in 0..10 {
            assert!(!state.ping(start + Duration::from_secs(second)));
        }
        assert_eq!(state.strikes, 0);
    }

    #[test]
    fn without_calls_the_interval_is_two_hours_unless_permitted() {
        let (mut strict, _calls) = state(Duration::from_secs(1), false);
        let (mut permissive, _other) = state(Duration::from_secs(1), true);
        let start = Instant::now();
        let at = |minute: u64| start + Duration::from_secs(minute * 60);
        let strikes: Vec<bool> = (0..4).map(|minute| strict.ping(at(minute))).collect();
        assert_eq!(strikes, [false, false, false, true]);
        assert!((0..4).all(|minute| !permissive.ping(at(minute))));
        assert_eq!(permissive.strikes, 0);
    }

    #[test]
    fn headers_or_data_from_the_server_reset_the_strikes() {
        let (mut state, _calls) = state(Duration::from_secs(1), false);
        let now = Instant::now();
        for kind in [frame::HEADERS, frame::DATA].into_iter().cycle().take(10) {
            assert!(!state.ping(now));
            state.wrote(&frame(kind, 0, 1, b"x"));
        }
        assert_eq!(state.strikes, 0);
        // Other frames do not.
        state.wrote(&frame(frame::PING, frame::ACK, 0, &[0; 8]));
        assert!(!state.ping(now) && !state.ping(now) && !state.ping(now));
        assert!(state.ping(now));
    }

    #[test]
    fn frames_are_found_across_any_split_and_acks_are_not_pings() {
        let (mut state, _calls) = state(Duration::from_secs(1), true);
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(frame::HEADERS, 0x4, 3, &[1; 300]));
        for _ in 0..3 {
            bytes.extend(frame(frame::PING, frame::ACK, 0, &[0; 8]));
            bytes.extend(ping());
            bytes.extend(frame(frame::DATA, 0, 3, &[frame::PING; 20]));
        }
        for chunk in bytes.chunks(7) {
            assert!(state.read(chunk));
        }
        assert_eq!((state.strikes, state.last_stream, state.goaway.is_some()), (2, 3, false));
        assert!(state.read(&ping()));
        assert_eq!(state.goaway.map(|(bytes, _)| bytes), Some(goaway(3)));
    }

    #[test]
    fn a_connection_without_the_preface_is_not_watched() {
        let (mut state, _calls) = state(Duration::from_secs(1), false);
        assert!(state.read(b"PRI * "));
        assert!(!state.read(b"GET / HTTP/1.1\r\n"));
    }

    #[tokio::test]
    async fn the_goaway_goes_out_at_a_frame_boundary_then_the_stream_fails() {
        let (mut client, server) = tokio::io::duplex(4096);
        let calls = Arc::new(ConnectionCalls::new(None));
        let policy = PingPolicy { min_interval: Duration::from_secs(1), permit_without_calls: false };
        let mut server = EnforcePings::new(server, Some(policy), &calls);
        // The server is half-way through a frame when the policy is broken.
        let data = frame(frame::DATA, 0, 1, b"hello");
        assert_eq!(server.write(&data[..4]).await.unwrap(), 4);
        let mut pings = PREFACE.to_vec();
        (0..4).for_each(|_| pings.extend(ping()));
        client.write_all(&pings).await.unwrap();
        let mut buf = vec![0; pings.len()];
        server.read_exact(&mut buf).await.unwrap();
        // The frame ends, then comes the GOAWAY, and the stream is done.
        server.write_all(&data[4..]).await.unwrap();
        assert_eq!(server.flush().await.unwrap_err().kind(), io::ErrorKind::ConnectionAborted);
        assert!(server.read(&mut buf).await.is_err());
        assert!(server.write(b"more").await.is_err());
        let mut sent = Vec::new();
        client.read_to_end(&mut sent).await.unwrap();
        assert_eq!(sent, [data, goaway(0).to_vec()].concat());
    }
}
