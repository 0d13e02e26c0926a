//! A bare HTTP/2 client that writes frames by hand, for hitting the
//! server's connection-level limits exactly (refused and reset streams,
//! pings, GOAWAY), which well-behaved clients never do.

use std::net::SocketAddr;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::PROMPTLY;

/// HTTP/2 frame types used here.
pub mod kind {
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
}

/// HTTP/2 error codes used here.
pub mod reason {
    /// NO_ERROR.
    pub const NO_ERROR: u32 = 0x0;
    /// REFUSED_STREAM.
    pub const REFUSED_STREAM: u32 = 0x7;
    /// CANCEL.
    pub const CANCEL: u32 = 0x8;
    /// ENHANCE_YOUR_CALM.
    pub const ENHANCE_YOUR_CALM: u32 = 0xb;
}

const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;

/// One received frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Frame type.
    pub kind: u8,
    /// Flags.
    pub flags: u8,
    /// Stream identifier.
    pub stream_id: u32,
    /// Payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// The error code of a RST_STREAM or GOAWAY frame.
    pub fn error_code(&self) -> u32 {
        let at = if self.kind == kind::GOAWAY { 4 } else { 0 };
        u32::from_be_bytes(self.payload[at..at + 4].try_into().expect("4 bytes"))
    }

    /// The debug data of a GOAWAY frame.
    pub fn debug_data(&self) -> String {
        String::from_utf8_lossy(&self.payload[8..]).into_owned()
    }
}

/// An HTTP/2 connection driven frame by frame.
#[derive(Debug)]
pub struct RawH2 {
    stream: TcpStream,
}

impl RawH2 {
    /// Connects, sends the preface and empty SETTINGS, and acknowledges the server's SETTINGS
    /// (so its limits are in force).
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut raw = Self { stream };
        let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        hello.extend(frame(kind::SETTINGS, 0, 0, &[]));
        raw.write(&hello).await;
        let settings = raw.next_of(&[kind::SETTINGS]).await.expect("server SETTINGS");
        assert_eq!(settings.flags & ACK, 0, "first SETTINGS from the server is its own");
        raw.write(&frame(kind::SETTINGS, ACK, 0, &[])).await;
        raw
    }

    /// Writes raw bytes (one or more frames) in one go.
    pub async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write frames");
    }

    /// Reads the next frame; `None` when the server closed the connection.
    pub async fn read_frame(&mut self) -> Option<Frame> {
        let read = async {
            let mut header = [0u8; 9];
            self.stream.read_exact(&mut header).await.ok()?;
            let len = u32::from_be_bytes([0, header[0], header[1], header[2]]) as usize;
            let mut payload = vec![0; len];
            self.stream.read_exact(&mut payload).await.ok()?;
            let stream_id = u32::from_be_bytes(header[5..9].try_into().expect("4 bytes")) & 0x7fff_ffff;
            Some(Frame { kind: header[3], flags: header[4], stream_id, payload })
        };
        tokio::time::timeout(PROMPTLY, read).await.expect("server sent nothing for too long")
    }

    /// Skips frames until one of `kinds` arrives; `None` if the connection closes first.
    pub async fn next_of(&mut self, kinds: &[u8]) -> Option<Frame> {
        // Bounded: every read is bounded by PROMPTLY and a server sends few frames here.
        for _ in 0..1000 {
            let frame = self.read_frame().await?;
            if kinds.contains(&frame.kind) {
                return Some(frame);
            }
        }
        panic!("none of the frames {kinds:?} arrived");
    }
}

/// Encodes one frame.
pub fn frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("small frame").to_be_bytes();
    let mut bytes = vec![len[1], len[2], len[3], kind, flags];
    bytes.extend(stream_id.to_be_bytes());
    bytes.extend(payload);
    bytes
}

/// HEADERS of a `UnaryRPC` call on `stream_id`; with `end_stream`, a call with no message.
pub fn unary_headers(stream_id: u32, end_stream: bool) -> Vec<u8> {
    // HPACK by hand: indexed static entries and literals without indexing.
    let mut block = vec![0x83, 0x86]; // :method POST, :scheme http
    let mut literal = |name_index: u8, value: &str| {
        block.push(name_index);
        block.push(u8::try_from(value.len()).expect("short value"));
        block.extend(value.as_bytes());
    };
    literal(0x04, "/ConnectService/UnaryRPC"); // :path
    literal(0x01, "localhost"); // :authority
    block.extend([0x0f, 0x10]); // content-type (static index 31)
    block.push(16);
    block.extend(b"application/grpc");
    block.extend([0x00, 2]);
    block.extend(b"te");
    block.push(8);
    block.extend(b"trailers");
    let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
    frame(kind::HEADERS, flags, stream_id, &block)
}

/// RST_STREAM on `stream_id` with `code`.
pub fn rst_stream(stream_id: u32, code: u32) -> Vec<u8> {
    frame(kind::RST_STREAM, 0, stream_id, &code.to_be_bytes())
}
