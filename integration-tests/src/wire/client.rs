//! HTTP/2 requests through the `h2` crate, with any headers and body bytes:
//! no tonic in the way, so the tests see exactly what the server answers
//! (tonic's client enforces `grpc-timeout` itself and reports its own
//! `CANCELLED` when its timer wins the race against the server's answer).

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use connect_proto::headers::{GRPC_MESSAGE, GRPC_STATUS, insert_grpc_request_headers};
use h2::client::SendRequest;
use http::{HeaderMap, Request, StatusCode};
use tokio::net::TcpStream;

use crate::PROMPTLY;

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
        self.grpc_header(GRPC_STATUS.as_str()).map(|value| value.parse().expect("numeric grpc-status"))
    }

    /// The `grpc-message`, percent-decoded.
    pub fn grpc_message(&self) -> Option<String> {
        self.grpc_header(GRPC_MESSAGE.as_str()).map(|value| percent_decode(&value))
    }

    /// A gRPC header as it travelled (still percent-encoded), from the trailers or a
    /// trailers-only response.
    pub fn grpc_header(&self, name: &str) -> Option<String> {
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
    let mut request = Request::post(format!("http://localhost{path}")).body(()).expect("valid request");
    insert_grpc_request_headers(request.headers_mut());
    request
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

/// Calls `request` on a new connection to `addr` with `body`, and reads the whole
/// response. Unless `end_stream`, the request stream stays open until the response
/// is complete (as a client stream still sending would).
pub async fn call(addr: SocketAddr, request: Request<()>, body: Bytes, end_stream: bool) -> RawResponse {
    let mut client = h2_connect(addr).await;
    let (response, _open_until_answered) = send_keep_open(&mut client, request, body, end_stream).await;
    tokio::time::timeout(PROMPTLY, collect(response)).await.expect("response within PROMPTLY")
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
