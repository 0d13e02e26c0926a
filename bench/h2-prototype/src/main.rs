//! `h2-prototype`: a gRPC-specialised HTTP/2 server for the unary path only,
//! written to measure how much CPU a transport built for gRPC saves beside
//! connect-server's h2 + hyper + tonic stack on this machine. It is a bench
//! figure, not a server: no TLS, no limits beyond a few protocol caps, no
//! telemetry, no streaming calls, no defences against hostile peers.
//!
//!     cargo run --release -- --port 0     # prints `listening on 127.0.0.1:PORT`
//!
//! It answers `POST /ConnectService/UnaryRPC` (the path connect-server serves:
//! the proto file has no `package`) as connect-server does, `Hello, ` +
//! `request_data`, and every other path with a trailers-only `grpc-status: 12`.
//!
//! The shape is the one of grpc-go's `http2_server.go` and gRPC C++'s chttp2:
//! one task per connection reads frames into one buffer, decodes each header
//! block as it arrives, runs the handler inline when a request's last DATA frame
//! arrives (no task, channel or waker per call), appends response frames to
//! one output buffer and writes it with one syscall per batch of frames read.

use std::io;

use bytes::{Buf, BytesMut};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod hpack;

/// The allocator connect-server runs with, so the figures compare transports, not allocators.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `RequestMessage` of proto/connect.proto, by hand: two structs do not need a build script.
#[derive(Clone, PartialEq, Message)]
struct RequestMessage {
    #[prost(string, tag = "1")]
    request_data: String,
    #[prost(uint32, tag = "2")]
    count: u32,
    #[prost(uint32, tag = "3")]
    interval_ms: u32,
}

/// `ResponseMessage` of proto/connect.proto.
#[derive(Clone, PartialEq, Message)]
struct ResponseMessage {
    #[prost(string, tag = "1")]
    response_data: String,
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const UNARY_PATH: &[u8] = b"/ConnectService/UnaryRPC";

// Frame types, flags and error codes of RFC 9113.
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const PRIORITY: u8 = 0x2;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY_FLAG: u8 = 0x20;
const PROTOCOL_ERROR: u32 = 0x1;
const FLOW_CONTROL_ERROR: u32 = 0x3;
const STREAM_CLOSED: u32 = 0x5;
const FRAME_SIZE_ERROR: u32 = 0x6;
const REFUSED_STREAM: u32 = 0x7;
const COMPRESSION_ERROR: u32 = 0x9;

const MAX_WINDOW: i64 = (1 << 31) - 1;
/// The windows we grant, connection and stream: hyper's defaults (1 MiB each), as connect-server.
const RECV_WINDOW: i64 = 1 << 20;
/// We keep the default SETTINGS_MAX_FRAME_SIZE: gRPC messages this small never need more.
const OUR_MAX_FRAME: usize = 16_384;
/// connect-server's default `--max-concurrent-streams`.
const MAX_STREAMS: usize = 1024;
/// A header block split over CONTINUATION frames may not grow past this (a cap, not a defence).
const MAX_HEADER_BLOCK: usize = 64 * 1024;

// The response header blocks, encoded once by hand. Literals "without indexing"
// never touch the dynamic table, so the encoder keeps no state and needs no
// table-size bookkeeping; a few bytes more per response than h2's indexed form.
/// `:status: 200` (static index 8), `content-type: application/grpc` (name: static index 31).
const RESPONSE_HEADERS: &[u8] = b"\x88\x0f\x10\x10application/grpc";
/// `grpc-status: 0`, a literal with a literal name.
const OK_TRAILERS: &[u8] = b"\x00\x0bgrpc-status\x010";
/// Trailers-only: the response headers and `grpc-status: 12` (UNIMPLEMENTED) in one block.
const UNIMPLEMENTED: &[u8] = b"\x88\x0f\x10\x10application/grpc\x00\x0bgrpc-status\x0212";
/// Trailers-only `grpc-status: 13` (INTERNAL): the request was not one framed message.
const INTERNAL: &[u8] = b"\x88\x0f\x10\x10application/grpc\x00\x0bgrpc-status\x0213";
/// `:status: 415` (name: static index 8): not a gRPC request at all.
const UNSUPPORTED_MEDIA_TYPE: &[u8] = b"\x08\x03415";

fn main() -> io::Result<()> {
    let port = port_flag()?;
    // One current-thread runtime: connect-server runs one current-thread runtime per
    // worker (its main.rs, server/workers.rs), and pinned to one core it has one worker.
    // The same shape here, so the comparison is transport against transport.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            let (tcp, _) = listener.accept().await?;
            // One task per connection; every call of the connection runs inside it.
            tokio::spawn(async move {
                let _ = serve(tcp).await;
            });
        }
    })
}

/// `--port N` (0: any free port), the one flag.
fn port_flag() -> io::Result<u16> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == "--port").and_then(|i| args.get(i + 1)) {
        Some(port) => port.parse().map_err(|_| io::Error::other("--port takes a number")),
        None => Err(io::Error::other("usage: h2-prototype --port N")),
    }
}

/// Serves one h2c (prior knowledge) connection until the peer closes it or errs.
async fn serve(mut tcp: TcpStream) -> io::Result<()> {
    tcp.set_nodelay(true)?;
    let mut conn = Conn::new();
    let mut input = BytesMut::with_capacity(64 * 1024);
    // Our preface goes out before the client's is read: one round trip less.
    tcp.write_all(&conn.out).await?;
    conn.out.clear();
    while input.len() < PREFACE.len() {
        if tcp.read_buf(&mut input).await? == 0 {
            return Ok(());
        }
    }
    if &input[..PREFACE.len()] != PREFACE {
        return Ok(()); // Not HTTP/2 with prior knowledge: nothing to say to it.
    }
    input.advance(PREFACE.len());
    loop {
        let result = conn.frames(&mut input);
        if let Err(code) = result {
            conn.go_away(code);
        }
        // Everything the frames of this read produced, in one write.
        if !conn.out.is_empty() {
            tcp.write_all(&conn.out).await?;
            conn.out.clear();
        }
        if result.is_err() || (conn.peer_gone && conn.streams.is_empty()) {
            return Ok(());
        }
        // Room for a whole frame; `reserve` reuses the buffer once its frames are consumed.
        input.reserve(OUR_MAX_FRAME + 9);
        if tcp.read_buf(&mut input).await? == 0 {
            return Ok(());
        }
    }
}

/// Where a request goes, from its header block.
#[derive(Clone, Copy, PartialEq)]
enum Route {
    Unary,
    Unimplemented,
    NotGrpc,
}

/// A request stream from its HEADERS until its response has left.
struct Stream {
    id: u32,
    route: Route,
    /// The request body, when it came in more than one DATA frame.
    body: Vec<u8>,
    /// The client half-closed (END_STREAM): the call has run.
    ended: bool,
    recv_window: i64,
    send_window: i64,
    /// Response DATA the peer's windows did not let out yet, and how much of it has.
    pending: Vec<u8>,
    sent: usize,
}

/// One connection's state; a connection error is its RFC 9113 error code.
struct Conn {
    hpack: hpack::Decoder,
    /// Frames to write at the end of this batch.
    out: Vec<u8>,
    streams: Vec<Stream>,
    last_stream: u32,
    /// A header block waiting for CONTINUATION: its stream and its HEADERS flags.
    continuing: Option<(u32, u8)>,
    header_block: Vec<u8>,
    recv_window: i64,
    send_window: i64,
    peer_initial_window: i64,
    peer_max_frame: usize,
    peer_gone: bool,
}

impl Conn {
    fn new() -> Self {
        let mut conn = Conn {
            hpack: hpack::Decoder::new(),
            out: Vec::with_capacity(64 * 1024),
            streams: Vec::new(),
            last_stream: 0,
            continuing: None,
            header_block: Vec::new(),
            recv_window: RECV_WINDOW,
            send_window: 65_535,
            peer_initial_window: 65_535,
            peer_max_frame: 16_384,
            peer_gone: false,
        };
        // SETTINGS: MAX_CONCURRENT_STREAMS and INITIAL_WINDOW_SIZE; then the connection window
        // raised from 64 KiB to RECV_WINDOW.
        let mut settings = Vec::new();
        settings.extend_from_slice(&3u16.to_be_bytes());
        settings.extend_from_slice(&(MAX_STREAMS as u32).to_be_bytes());
        settings.extend_from_slice(&4u16.to_be_bytes());
        settings.extend_from_slice(&(RECV_WINDOW as u32).to_be_bytes());
        frame(&mut conn.out, SETTINGS, 0, 0, &settings);
        frame(&mut conn.out, WINDOW_UPDATE, 0, 0, &((RECV_WINDOW - 65_535) as u32).to_be_bytes());
        conn
    }

    /// Handles every whole frame in `input` and consumes it; a partial frame stays for the next read.
    fn frames(&mut self, input: &mut BytesMut) -> Result<(), u32> {
        while input.len() >= 9 {
            let len = usize::from(input[0]) << 16 | usize::from(input[1]) << 8 | usize::from(input[2]);
            if len > OUR_MAX_FRAME {
                return Err(FRAME_SIZE_ERROR);
            }
            if input.len() < 9 + len {
                break;
            }
            let id = u32::from_be_bytes([input[5], input[6], input[7], input[8]]) & 0x7fff_ffff;
            self.frame(input[3], input[4], id, &input[9..9 + len])?;
            input.advance(9 + len);
        }
        // The connection window back to the peer once half of it is spent: one
        // WINDOW_UPDATE per half megabyte of requests, not one per DATA frame.
        if self.recv_window <= RECV_WINDOW / 2 {
            let increment = (RECV_WINDOW - self.recv_window) as u32;
            frame(&mut self.out, WINDOW_UPDATE, 0, 0, &increment.to_be_bytes());
            self.recv_window = RECV_WINDOW;
        }
        Ok(())
    }

    fn frame(&mut self, kind: u8, flags: u8, id: u32, payload: &[u8]) -> Result<(), u32> {
        // Nothing may come between a HEADERS without END_HEADERS and its CONTINUATIONs.
        if self.continuing.is_some() && kind != CONTINUATION {
            return Err(PROTOCOL_ERROR);
        }
        match kind {
            DATA => self.data(flags, id, payload),
            HEADERS => self.headers(flags, id, payload),
            CONTINUATION => {
                let Some((stream, header_flags)) = self.continuing else { return Err(PROTOCOL_ERROR) };
                if id != stream || self.header_block.len() + payload.len() > MAX_HEADER_BLOCK {
                    return Err(PROTOCOL_ERROR);
                }
                self.header_block.extend_from_slice(payload);
                if flags & END_HEADERS != 0 {
                    self.continuing = None;
                    let block = std::mem::take(&mut self.header_block);
                    let result = self.request_headers(stream, header_flags, &block);
                    self.header_block = block;
                    self.header_block.clear();
                    return result;
                }
                Ok(())
            }
            PRIORITY if id == 0 => Err(PROTOCOL_ERROR),
            PRIORITY if payload.len() != 5 => Err(FRAME_SIZE_ERROR),
            RST_STREAM if id == 0 || id > self.last_stream => Err(PROTOCOL_ERROR),
            RST_STREAM if payload.len() != 4 => Err(FRAME_SIZE_ERROR),
            RST_STREAM => {
                self.streams.retain(|s| s.id != id);
                Ok(())
            }
            SETTINGS => self.settings(flags, id, payload),
            PUSH_PROMISE => Err(PROTOCOL_ERROR), // Clients may not push.
            PING if id != 0 => Err(PROTOCOL_ERROR),
            PING if payload.len() != 8 => Err(FRAME_SIZE_ERROR),
            PING if flags & ACK == 0 => {
                frame(&mut self.out, PING, ACK, 0, payload);
                Ok(())
            }
            GOAWAY if id != 0 => Err(PROTOCOL_ERROR),
            GOAWAY => {
                // The calls already started finish; the connection closes when they have.
                self.peer_gone = true;
                Ok(())
            }
            WINDOW_UPDATE => self.window_update(id, payload),
            // PRIORITY is advisory, a PING ACK answers nothing, unknown types are ignored (§4.1).
            _ => Ok(()),
        }
    }

    fn headers(&mut self, flags: u8, id: u32, payload: &[u8]) -> Result<(), u32> {
        if id == 0 {
            return Err(PROTOCOL_ERROR);
        }
        let mut block = unpad(flags, payload)?;
        if flags & PRIORITY_FLAG != 0 {
            block = block.get(5..).ok_or(FRAME_SIZE_ERROR)?;
        }
        if flags & END_HEADERS == 0 {
            self.header_block.extend_from_slice(block);
            self.continuing = Some((id, flags));
            return Ok(());
        }
        self.request_headers(id, flags, block)
    }

    /// A whole header block: a new request, or the trailers of an open one.
    fn request_headers(&mut self, id: u32, flags: u8, block: &[u8]) -> Result<(), u32> {
        // Each field is seen through the callback: the only things kept are the route
        // and whether the content type is gRPC.
        let (mut route, mut grpc) = (Route::Unimplemented, false);
        self.hpack
            .decode(block, |name, value| match name {
                b":path" if value == UNARY_PATH => route = Route::Unary,
                b"content-type" => grpc = value.starts_with(b"application/grpc"),
                _ => {}
            })
            .map_err(|()| COMPRESSION_ERROR)?;
        let end = flags & END_STREAM != 0;
        if let Some(i) = self.streams.iter().position(|s| s.id == id) {
            // Client trailers: they must end the stream.
            if self.streams[i].ended || !end {
                return Err(PROTOCOL_ERROR);
            }
            let body = std::mem::take(&mut self.streams[i].body);
            self.streams[i].ended = true;
            self.call(i, &body);
            return Ok(());
        }
        // A new stream's id is odd and above every earlier one; a lower one is a closed stream.
        if id.is_multiple_of(2) || id <= self.last_stream {
            return Err(PROTOCOL_ERROR);
        }
        self.last_stream = id;
        if self.streams.len() >= MAX_STREAMS {
            frame(&mut self.out, RST_STREAM, 0, id, &REFUSED_STREAM.to_be_bytes());
            return Ok(());
        }
        self.streams.push(Stream {
            id,
            route: if grpc { route } else { Route::NotGrpc },
            body: Vec::new(),
            ended: end,
            recv_window: RECV_WINDOW,
            send_window: self.peer_initial_window,
            pending: Vec::new(),
            sent: 0,
        });
        if end {
            self.call(self.streams.len() - 1, &[]);
        }
        Ok(())
    }

    fn data(&mut self, flags: u8, id: u32, payload: &[u8]) -> Result<(), u32> {
        if id == 0 {
            return Err(PROTOCOL_ERROR);
        }
        // Flow control counts the whole payload, padding included (§6.9.1).
        let size = payload.len() as i64;
        self.recv_window -= size;
        if self.recv_window < 0 {
            return Err(FLOW_CONTROL_ERROR);
        }
        let body = unpad(flags, payload)?;
        let Some(i) = self.streams.iter().position(|s| s.id == id && !s.ended) else {
            if id > self.last_stream {
                return Err(PROTOCOL_ERROR); // DATA on an idle stream.
            }
            // Closed, or half-closed by the client: a stream error (§5.1); its response is dropped.
            self.streams.retain(|s| s.id != id);
            frame(&mut self.out, RST_STREAM, 0, id, &STREAM_CLOSED.to_be_bytes());
            return Ok(());
        };
        let stream = &mut self.streams[i];
        stream.recv_window -= size;
        if stream.recv_window < 0 {
            return Err(FLOW_CONTROL_ERROR);
        }
        if flags & END_STREAM != 0 {
            stream.ended = true;
            if stream.body.is_empty() {
                // The usual unary request: its one DATA frame, read straight from the input buffer.
                self.call(i, body);
            } else {
                stream.body.extend_from_slice(body);
                let body = std::mem::take(&mut stream.body);
                self.call(i, &body);
            }
            return Ok(());
        }
        stream.body.extend_from_slice(body);
        // A long request body: its stream window back once half of it is spent.
        if stream.recv_window <= RECV_WINDOW / 2 {
            let increment = (RECV_WINDOW - stream.recv_window) as u32;
            stream.recv_window = RECV_WINDOW;
            frame(&mut self.out, WINDOW_UPDATE, 0, id, &increment.to_be_bytes());
        }
        Ok(())
    }

    /// Runs the call of stream `i`, whose request has ended, inline, and queues its response.
    fn call(&mut self, i: usize, body: &[u8]) {
        let id = self.streams[i].id;
        let request = match self.streams[i].route {
            Route::Unary => unary_request(body),
            Route::Unimplemented => Err(UNIMPLEMENTED),
            Route::NotGrpc => Err(UNSUPPORTED_MEDIA_TYPE),
        };
        let request = match request {
            Ok(request) => request,
            Err(trailers_only) => {
                frame(&mut self.out, HEADERS, END_HEADERS | END_STREAM, id, trailers_only);
                self.streams.swap_remove(i);
                return;
            }
        };
        let response = hello(&request.request_data);
        frame(&mut self.out, HEADERS, END_HEADERS, id, RESPONSE_HEADERS);
        let len = 5 + response.encoded_len();
        let stream = &mut self.streams[i];
        let room = self.send_window.min(stream.send_window).min(self.peer_max_frame as i64);
        if len as i64 <= room {
            // The usual case: the message is encoded straight into the output buffer, one DATA frame.
            frame_header(&mut self.out, len, DATA, 0, id);
            grpc_frame(&mut self.out, &response);
            self.send_window -= len as i64;
            stream.send_window -= len as i64;
            frame(&mut self.out, HEADERS, END_HEADERS | END_STREAM, id, OK_TRAILERS);
            self.streams.swap_remove(i);
        } else {
            grpc_frame(&mut stream.pending, &response);
            self.flush(i);
        }
    }

    /// Sends what the windows allow of stream `i`'s pending response, and its trailers once all
    /// of it is out; true when the stream is done (and removed, so `i` is now another stream).
    fn flush(&mut self, i: usize) -> bool {
        let stream = &mut self.streams[i];
        while stream.sent < stream.pending.len() {
            let room = self.send_window.min(stream.send_window).min(self.peer_max_frame as i64);
            let n = (stream.pending.len() - stream.sent).min(room.max(0) as usize);
            if n == 0 {
                return false; // Waits for a WINDOW_UPDATE or a larger SETTINGS_INITIAL_WINDOW_SIZE.
            }
            frame(&mut self.out, DATA, 0, stream.id, &stream.pending[stream.sent..stream.sent + n]);
            stream.sent += n;
            stream.send_window -= n as i64;
            self.send_window -= n as i64;
        }
        frame(&mut self.out, HEADERS, END_HEADERS | END_STREAM, stream.id, OK_TRAILERS);
        self.streams.swap_remove(i);
        true
    }

    /// Every response waiting for window, after the windows grew.
    fn flush_all(&mut self) {
        let mut i = 0;
        while i < self.streams.len() {
            if !(self.streams[i].ended && self.flush(i)) {
                i += 1;
            }
        }
    }

    fn settings(&mut self, flags: u8, id: u32, payload: &[u8]) -> Result<(), u32> {
        if id != 0 {
            return Err(PROTOCOL_ERROR);
        }
        if flags & ACK != 0 {
            return if payload.is_empty() { Ok(()) } else { Err(FRAME_SIZE_ERROR) };
        }
        if !payload.len().is_multiple_of(6) {
            return Err(FRAME_SIZE_ERROR);
        }
        for setting in payload.chunks_exact(6) {
            let value = u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]);
            match u16::from_be_bytes([setting[0], setting[1]]) {
                // ENABLE_PUSH: 0 or 1; a server that never pushes need not remember it.
                0x2 if value > 1 => return Err(PROTOCOL_ERROR),
                // INITIAL_WINDOW_SIZE: moves every open stream's send window by the change (§6.9.2).
                0x4 => {
                    if i64::from(value) > MAX_WINDOW {
                        return Err(FLOW_CONTROL_ERROR);
                    }
                    let delta = i64::from(value) - self.peer_initial_window;
                    self.peer_initial_window = i64::from(value);
                    for stream in &mut self.streams {
                        stream.send_window += delta;
                        if stream.send_window > MAX_WINDOW {
                            return Err(FLOW_CONTROL_ERROR);
                        }
                    }
                }
                0x5 if !(16_384..=16_777_215).contains(&value) => return Err(PROTOCOL_ERROR),
                0x5 => self.peer_max_frame = value as usize,
                // HEADER_TABLE_SIZE: our encoder never indexes, so any table size suits it;
                // MAX_CONCURRENT_STREAMS limits pushes; MAX_HEADER_LIST_SIZE is advisory.
                _ => {}
            }
        }
        frame(&mut self.out, SETTINGS, ACK, 0, &[]);
        self.flush_all();
        Ok(())
    }

    fn window_update(&mut self, id: u32, payload: &[u8]) -> Result<(), u32> {
        let Ok(bytes) = <[u8; 4]>::try_from(payload) else { return Err(FRAME_SIZE_ERROR) };
        let increment = i64::from(u32::from_be_bytes(bytes) & 0x7fff_ffff);
        if id == 0 {
            self.send_window += increment;
            if increment == 0 {
                return Err(PROTOCOL_ERROR);
            }
            if self.send_window > MAX_WINDOW {
                return Err(FLOW_CONTROL_ERROR);
            }
            self.flush_all();
            return Ok(());
        }
        let Some(i) = self.streams.iter().position(|s| s.id == id) else {
            // A closed stream's late update is harmless; an idle stream's is not.
            return if id > self.last_stream { Err(PROTOCOL_ERROR) } else { Ok(()) };
        };
        let stream = &mut self.streams[i];
        stream.send_window += increment;
        // Stream errors: that stream is reset, the connection goes on.
        let error = if increment == 0 {
            PROTOCOL_ERROR
        } else if stream.send_window > MAX_WINDOW {
            FLOW_CONTROL_ERROR
        } else {
            if stream.ended {
                self.flush(i);
            }
            return Ok(());
        };
        frame(&mut self.out, RST_STREAM, 0, id, &error.to_be_bytes());
        self.streams.swap_remove(i);
        Ok(())
    }

    /// GOAWAY with the last stream we saw, before the connection closes.
    fn go_away(&mut self, code: u32) {
        let mut payload = [0; 8];
        payload[..4].copy_from_slice(&self.last_stream.to_be_bytes());
        payload[4..].copy_from_slice(&code.to_be_bytes());
        frame(&mut self.out, GOAWAY, 0, 0, &payload);
    }
}

/// The unary request out of its body: one uncompressed gRPC message, exactly.
/// A malformed body is INTERNAL, as tonic answers it; a compressed one UNIMPLEMENTED
/// (the prototype reads no `grpc-encoding`).
fn unary_request(body: &[u8]) -> Result<RequestMessage, &'static [u8]> {
    let (prefix, message) = body.split_at_checked(5).ok_or(INTERNAL)?;
    if prefix[0] != 0 {
        return Err(UNIMPLEMENTED);
    }
    if u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize != message.len() {
        return Err(INTERNAL);
    }
    RequestMessage::decode(message).map_err(|_| INTERNAL)
}

/// connect-server's answer (service/greeting.rs): `Hello, ` + the request's data.
fn hello(data: &str) -> ResponseMessage {
    let mut text = String::with_capacity("Hello, ".len() + data.len());
    text.push_str("Hello, ");
    text.push_str(data);
    ResponseMessage { response_data: text }
}

/// A gRPC length-prefixed message: uncompressed flag, big-endian length, the message.
fn grpc_frame(out: &mut Vec<u8>, message: &ResponseMessage) {
    out.push(0);
    out.extend_from_slice(&(message.encoded_len() as u32).to_be_bytes());
    message.encode(out).expect("a Vec grows as needed");
}

/// Strips a PADDED frame's pad length and padding.
fn unpad(flags: u8, payload: &[u8]) -> Result<&[u8], u32> {
    if flags & PADDED == 0 {
        return Ok(payload);
    }
    let (&pad, rest) = payload.split_first().ok_or(FRAME_SIZE_ERROR)?;
    rest.len().checked_sub(usize::from(pad)).map(|end| &rest[..end]).ok_or(PROTOCOL_ERROR)
}

fn frame_header(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, id: u32) {
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&id.to_be_bytes());
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, id: u32, payload: &[u8]) {
    frame_header(out, payload.len(), kind, flags, id);
    out.extend_from_slice(payload);
}
