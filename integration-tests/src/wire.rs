//! Talking to the server below the gRPC client: HTTP/2 requests through the
//! `h2` crate with any headers and body bytes, and hand-made HTTP/2 frames on
//! a bare TCP socket for what even `h2` will not send (floods, refused streams).

use std::{net::SocketAddr, time::Duration};

use bytes::{BufMut, Bytes, BytesMut};
use h2::client::SendRequest;
use http::{HeaderMap, Request, StatusCode};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::PROMPTLY;

/// The path of `UnaryRPC`.
pub const UNARY_PATH: &str = "/ConnectService/UnaryRPC";

/// The HTTP/2 client connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Opens an HTTP/2 connection with the `h2` crate; the connection task runs in the background.
pub async fn h2_connect(addr: SocketAddr) -> SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (send, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    send
}

/// What came back for one raw HTTP/2 request.
#[derive(Debug)]
pub struct RawResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body bytes (gRPC frames).
    pub body: Bytes,
    /// The trailers, if any (a trailers-only response has none: its status is in `headers`).
    pub trailers: Option<HeaderMap>,
}

impl RawResponse {
    /// The `grpc-status` code, from the trailers or a trailers-only response.
    pub fn grpc_status(&self) -> Option<i32> {
        self.grpc_header("grpc-status").map(|value| value.parse().expect("numeric grpc-status"))
    }

    /// The `grpc-message`, percent-decoded.
    pub fn grpc_message(&self) -> Option<String> {
        self.grpc_header("grpc-message").map(|value| percent_decode(&value))
    }

    fn grpc_header(&self, name: &str) -> Option<String> {
        let value = self.trailers.as_ref().and_then(|t| t.get(name)).or_else(|| self.headers.get(name))?;
        Some(value.to_str().expect("ascii header").to_owned())
    }
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&value[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A gRPC request to `path` with the standard headers; change them before sending.
pub fn grpc_request(path: &str) -> Request<()> {
    Request::builder()
        .method("POST")
        .uri(format!("http://localhost{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("valid request")
}

/// Sends `request` with `body` (end of stream after it) and reads the whole response.
pub async fn send(client: &mut SendRequest<Bytes>, request: Request<()>, body: Bytes) -> RawResponse {
    let (response, _stream) = send_keep_open(client, request, body, true).await;
    tokio::time::timeout(PROMPTLY, collect(response)).await.expect("response within PROMPTLY")
}

/// Sends `request` and `body`, ending the stream only if `end`; returns the pending
/// response and the send half (dropping the send half of an unfinished stream resets it).
pub async fn send_keep_open(
    client: &mut SendRequest<Bytes>,
    request: Request<()>,
    body: Bytes,
    end: bool,
) -> (h2::client::ResponseFuture, h2::SendStream<Bytes>) {
    let mut ready = client.clone().ready().await.expect("connection ready");
    let (response, mut stream) = ready.send_request(request, false).expect("send request");
    stream.reserve_capacity(body.len());
    stream.send_data(body, end).expect("send body");
    *client = ready;
    (response, stream)
}

/// Reads a response to its end: headers, body and trailers.
pub async fn collect(response: h2::client::ResponseFuture) -> RawResponse {
    let response = response.await.expect("response headers");
    let (parts, mut body) = response.into_parts();
    let mut data = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("body chunk");
        body.flow_control().release_capacity(chunk.len()).expect("release capacity");
        data.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.expect("trailers");
    RawResponse { status: parts.status, headers: parts.headers, body: data.freeze(), trailers }
}

/// One gRPC length-prefixed message: flag byte, declared length, then `payload`.
pub fn grpc_frame(compressed: bool, declared_len: u32, payload: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(5 + payload.len());
    frame.put_u8(u8::from(compressed));
    frame.put_u32(declared_len);
    frame.extend_from_slice(payload);
    frame.freeze()
}

/// A gRPC message whose prefix tells the truth.
pub fn grpc_message(payload: &[u8]) -> Bytes {
    grpc_frame(false, payload.len().try_into().expect("small payload"), payload)
}

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
#[derive(Debug, Clone)]
pub struct Frame {
    /// The frame type.
    pub kind: u8,
    /// Its flags.
    pub flags: u8,
    /// Its stream id.
    pub stream: u32,
    /// Its payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// For GOAWAY and RST_STREAM: the error code.
    pub fn error_code(&self) -> u32 {
        let at = if self.kind == frame_type::GOAWAY { 4 } else { 0 };
        u32::from_be_bytes(self.payload[at..at + 4].try_into().expect("error code"))
    }
}

/// Encodes one HTTP/2 frame.
pub fn encode_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("small frame");
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
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

/// A bare TCP connection that speaks HTTP/2 frame by frame.
#[derive(Debug)]
pub struct RawConn {
    /// The socket.
    pub tcp: TcpStream,
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
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        Some(Frame { kind: head[3], flags: head[4], stream, payload })
    }
}

/// An `h2` client connection whose socket can be torn down abruptly.
#[derive(Debug)]
pub struct AbortableH2 {
    /// Sends requests.
    pub client: SendRequest<Bytes>,
    task: tokio::task::JoinHandle<()>,
}

impl AbortableH2 {
    /// Connects with `SO_LINGER` 0, so that dropping the socket sends a TCP reset.
    pub async fn connect(addr: SocketAddr) -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_zero_linger().expect("SO_LINGER 0");
        let tcp = socket.connect(addr).await.expect("connect");
        let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
        let task = tokio::spawn(async move {
            let _ = connection.await;
        });
        Self { client, task }
    }

    /// Vanishes: the socket is closed with a TCP reset, no GOAWAY, no RST_STREAM.
    pub fn vanish(self) {
        self.task.abort();
    }
}
