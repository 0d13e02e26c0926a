//! A bare HTTP/2 gRPC client (the `h2` crate, no tonic), for tests that must
//! see exactly what the server sends. tonic's client enforces `grpc-timeout`
//! itself and reports its own `CANCELLED` when its timer wins the race
//! against the server's answer; this client has no timer of its own.

use bytes::{Bytes, BytesMut};
use connect_proto::RequestMessage;
use http::{HeaderMap, Request};
use prost::Message;
use tokio::net::TcpStream;

/// What came back: the response headers, the trailers (the headers themselves
/// for a trailers-only response) and the number of messages in between.
#[derive(Debug)]
pub struct RawResponse {
    /// The response headers.
    pub headers: HeaderMap,
    /// The trailers; equal to `headers` when the response was trailers-only.
    pub trailers: HeaderMap,
    /// How many length-prefixed messages the body held.
    pub messages: usize,
}

impl RawResponse {
    /// The `grpc-status` trailer as a number.
    pub fn status(&self) -> i32 {
        self.trailers.get("grpc-status").expect("grpc-status").to_str().unwrap().parse().unwrap()
    }

    /// The `grpc-message` trailer, still percent-encoded, or "" without one.
    pub fn message(&self) -> &str {
        self.trailers.get("grpc-message").map_or("", |value| value.to_str().unwrap())
    }
}

/// One request message framed for the wire (uncompressed).
pub fn frame(message: &RequestMessage) -> Bytes {
    let mut out = BytesMut::new();
    out.extend_from_slice(&[0]);
    out.extend_from_slice(&(message.encoded_len() as u32).to_be_bytes());
    message.encode(&mut out).expect("a BytesMut grows");
    out.freeze()
}

/// Calls `path` on `addr` with `headers`, sends `body` and, when `half_close`
/// is false, leaves the request stream open until the response is complete.
pub async fn call(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
    half_close: bool,
) -> RawResponse {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(connection);
    let mut client = client.ready().await.expect("h2 ready");
    let mut request = Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (key, value) in headers {
        request = request.header(*key, *value);
    }
    let (response, mut send) = client.send_request(request.body(()).unwrap(), false).expect("send headers");
    send.send_data(body, half_close).expect("send body");
    let response = response.await.expect("response headers");
    let (parts, mut body) = response.into_parts();
    if parts.headers.contains_key("grpc-status") {
        return RawResponse { trailers: parts.headers.clone(), headers: parts.headers, messages: 0 };
    }
    let mut data = BytesMut::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("body data");
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.expect("trailers").expect("a trailer block");
    drop(send);
    RawResponse { headers: parts.headers, trailers, messages: count_messages(&data) }
}

fn count_messages(mut data: &[u8]) -> usize {
    let mut count = 0;
    while data.len() >= 5 {
        let length = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
        data = &data[(5 + length).min(data.len())..];
        count += 1;
    }
    count
}
