//! Hand-made HTTP/2 frames on a bare TCP socket (or a TLS stream), for what
//! even the `h2` crate will not send: floods, refused and reset streams,
//! unanswered pings, broken prefaces. [`RawConn`] writes and reads frames one
//! by one.

use std::{net::SocketAddr, time::Duration};

use bytes::BytesMut;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};

use crate::PROMPTLY;

/// The HTTP/2 client connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// HTTP/2 frame types used by the raw tests.
pub mod frame_type {
    /// DATA.
    pub const DATA: u8 = 0x0;
    /// HEADERS.
    pub const HEADERS: u8 = 0x1;
    /// RST_STREAM.
    pub const RST_STREAM: u8 = 0x3;
    /// SETTINGS.
    pub const SETTINGS: u8 = 0x4;
    /// PING.
    pub const PING: u8 = 0x6;
    /// GOAWAY.
    pub const GOAWAY: u8 = 0x7;
    /// WINDOW_UPDATE.
    pub const WINDOW_UPDATE: u8 = 0x8;
}

/// HTTP/2 error codes used by the raw tests (RST_STREAM, GOAWAY).
pub mod error_code {
    /// NO_ERROR.
    pub const NO_ERROR: u32 = 0x0;
    /// REFUSED_STREAM.
    pub const REFUSED_STREAM: u32 = 0x7;
    /// CANCEL.
    pub const CANCEL: u32 = 0x8;
    /// ENHANCE_YOUR_CALM.
    pub const ENHANCE_YOUR_CALM: u32 = 0xb;
}

/// HTTP/2 frame flags used by the raw tests.
pub mod flags {
    /// END_STREAM (DATA, HEADERS).
    pub const END_STREAM: u8 = 0x1;
    /// ACK (SETTINGS, PING).
    pub const ACK: u8 = 0x1;
    /// END_HEADERS (HEADERS).
    pub const END_HEADERS: u8 = 0x4;
}

/// One HTTP/2 frame as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The frame type.
    pub kind: u8,
    /// Its flags.
    pub flags: u8,
    /// Its stream id.
    pub stream_id: u32,
    /// Its payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// For GOAWAY and RST_STREAM: the error code.
    pub fn error_code(&self) -> u32 {
        let at = if self.kind == frame_type::GOAWAY { 4 } else { 0 };
        u32::from_be_bytes(self.payload[at..at + 4].try_into().expect("error code"))
    }

    /// For GOAWAY: the debug data.
    pub fn debug_data(&self) -> String {
        String::from_utf8_lossy(&self.payload[8..]).into_owned()
    }
}

/// Encodes one HTTP/2 frame.
pub fn encode_frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("small frame");
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream_id.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK header block of literal fields (no indexing, no Huffman): simple and always valid.
pub fn header_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x00);
        push_hpack_string(&mut out, name.as_bytes());
        push_hpack_string(&mut out, value.as_bytes());
    }
    out
}

fn push_hpack_string(out: &mut Vec<u8>, s: &[u8]) {
    // 7-bit prefixed length, no Huffman.
    let mut len = s.len();
    if len < 127 {
        out.push(u8::try_from(len).expect("short"));
    } else {
        out.push(127);
        len -= 127;
        while len >= 128 {
            out.push(u8::try_from(len % 128).expect("7 bits") | 0x80);
            len /= 128;
        }
        out.push(u8::try_from(len).expect("7 bits"));
    }
    out.extend_from_slice(s);
}

/// The header block of a gRPC call to `path`.
pub fn grpc_headers(path: &str) -> Vec<u8> {
    header_block(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ])
}

/// A HEADERS frame opening a gRPC call to `path` on `stream_id`; with `end_stream`,
/// a call that sends no message.
pub fn grpc_headers_frame(path: &str, stream_id: u32, end_stream: bool) -> Vec<u8> {
    let end = if end_stream { flags::END_STREAM } else { 0 };
    encode_frame(frame_type::HEADERS, flags::END_HEADERS | end, stream_id, &grpc_headers(path))
}

/// A RST_STREAM frame on `stream_id` with `code`.
pub fn rst_stream(stream_id: u32, code: u32) -> Vec<u8> {
    encode_frame(frame_type::RST_STREAM, 0, stream_id, &code.to_be_bytes())
}

/// A bare TCP connection (or any other stream, such as TLS) that speaks
/// HTTP/2 frame by frame.
#[derive(Debug)]
pub struct RawConn<S = TcpStream> {
    /// The socket.
    pub tcp: S,
    buf: BytesMut,
}

impl RawConn {
    /// Connects and sends the preface and an empty SETTINGS frame.
    pub async fn open(addr: SocketAddr) -> Self {
        let mut conn = Self::connect(addr).await;
        conn.write(PREFACE).await;
        conn.write(&encode_frame(frame_type::SETTINGS, 0, 0, &[])).await;
        conn
    }

    /// Opens a connection, acknowledges the server's SETTINGS (so they are in force)
    /// and returns them as `(identifier, value)` pairs.
    pub async fn handshake(addr: SocketAddr) -> (Self, Vec<(u16, u32)>) {
        let mut conn = Self::open(addr).await;
        let (mut settings, mut acked) = (None, false);
        while settings.is_none() || !acked {
            let frame = conn.read_until(|f| f.kind == frame_type::SETTINGS).await.expect("server SETTINGS");
            if frame.flags & flags::ACK == 0 {
                settings = Some(frame);
            } else {
                acked = true;
            }
        }
        let settings = settings.expect("server SETTINGS");
        conn.write(&encode_frame(frame_type::SETTINGS, flags::ACK, 0, &[])).await;
        let pairs = settings
            .payload
            .chunks_exact(6)
            .map(|c| (u16::from_be_bytes([c[0], c[1]]), u32::from_be_bytes([c[2], c[3], c[4], c[5]])))
            .collect();
        (conn, pairs)
    }

    /// Wraps a connected socket; sends nothing.
    pub fn from_tcp(tcp: TcpStream) -> Self {
        Self { tcp, buf: BytesMut::new() }
    }

    /// Connects and sends nothing.
    pub async fn connect(addr: SocketAddr) -> Self {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        Self { tcp, buf: BytesMut::new() }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> RawConn<S> {
    /// Speaks frames over `stream` (connected, and through TLS if need be); sends nothing.
    pub fn over(stream: S) -> Self {
        Self { tcp: stream, buf: BytesMut::new() }
    }

    /// Sends the preface and an empty SETTINGS frame, then acknowledges the server's SETTINGS.
    pub async fn start(&mut self) {
        self.write(PREFACE).await;
        self.write(&encode_frame(frame_type::SETTINGS, 0, 0, &[])).await;
        self.read_until(|f| f.kind == frame_type::SETTINGS && f.flags & flags::ACK == 0)
            .await
            .expect("server SETTINGS");
        self.write(&encode_frame(frame_type::SETTINGS, flags::ACK, 0, &[])).await;
    }

    /// Writes raw bytes; panics if the server has closed the connection.
    pub async fn write(&mut self, bytes: &[u8]) {
        self.tcp.write_all(bytes).await.expect("write");
    }

    /// Writes raw bytes; `false` if the connection is closed or reset.
    pub async fn try_write(&mut self, bytes: &[u8]) -> bool {
        self.tcp.write_all(bytes).await.is_ok()
    }

    /// Reads the next frame; `None` on end of file or reset. Panics after `PROMPTLY`.
    pub async fn read_frame(&mut self) -> Option<Frame> {
        self.read_frame_within(PROMPTLY).await.expect("a frame or EOF within PROMPTLY")
    }

    /// Reads the next frame; `Err` if nothing arrives within `wait`.
    pub async fn read_frame_within(
        &mut self,
        wait: Duration,
    ) -> Result<Option<Frame>, tokio::time::error::Elapsed> {
        tokio::time::timeout(wait, self.read_frame_unbounded()).await
    }

    /// Reads frames until one matches `wanted`, skipping others; `None` if the connection ends first.
    pub async fn read_until(&mut self, wanted: impl Fn(&Frame) -> bool) -> Option<Frame> {
        loop {
            let frame = self.read_frame().await?;
            if wanted(&frame) {
                return Some(frame);
            }
        }
    }

    /// Reads frames until one of the types `kinds` arrives, skipping others; `None` if the
    /// connection ends first (so `next_of(&[])` waits for the close).
    pub async fn next_of(&mut self, kinds: &[u8]) -> Option<Frame> {
        self.read_until(|frame| kinds.contains(&frame.kind)).await
    }

    /// Reads and discards everything until the server closes the connection; `Err` if it does not within `wait`.
    pub async fn expect_closed_within(
        &mut self,
        wait: Duration,
    ) -> Result<Vec<Frame>, tokio::time::error::Elapsed> {
        tokio::time::timeout(wait, async {
            let mut frames = Vec::new();
            while let Some(frame) = self.read_frame_unbounded().await {
                frames.push(frame);
            }
            frames
        })
        .await
    }

    async fn read_frame_unbounded(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.take_frame() {
                return Some(frame);
            }
            match self.tcp.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    fn take_frame(&mut self) -> Option<Frame> {
        if self.buf.len() < 9 {
            return None;
        }
        let len = usize::from(self.buf[0]) << 16 | usize::from(self.buf[1]) << 8 | usize::from(self.buf[2]);
        if self.buf.len() < 9 + len {
            return None;
        }
        let head = self.buf.split_to(9);
        let payload = self.buf.split_to(len).to_vec();
        let stream_id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        Some(Frame { kind: head[3], flags: head[4], stream_id, payload })
    }
}
