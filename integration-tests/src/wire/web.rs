//! Plain HTTP requests, over HTTP/1.1 or HTTP/2 (prior knowledge), as web
//! clients send them: the whole response read, trailers included.

use std::net::SocketAddr;

use bytes::Bytes;
use connect_proto::framing;
use http::{HeaderMap, Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

/// A whole response.
#[derive(Debug)]
pub struct WebResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// The trailers, when there were any.
    pub trailers: Option<HeaderMap>,
}

impl WebResponse {
    /// A header as text; `None` when absent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|value| value.to_str().expect("header is text"))
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("body is not JSON ({error}): {:?}", self.body))
    }

    /// The body as text.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("body is UTF-8")
    }
}

/// Sends `request` with `body` on a new connection speaking `version`, and reads the whole answer.
pub async fn send(addr: SocketAddr, version: Version, request: Request<()>, body: Bytes) -> WebResponse {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let request = request.map(|()| Full::new(body));
    let response = if version == Version::HTTP_2 {
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("h2");
        tokio::spawn(connection);
        sender.send_request(request).await.expect("response")
    } else {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("http/1.1");
        tokio::spawn(connection);
        sender.send_request(request).await.expect("response")
    };
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.expect("whole body");
    let trailers = collected.trailers().cloned();
    WebResponse { status: parts.status, headers: parts.headers, body: collected.to_bytes(), trailers }
}

/// A POST of `body` to `path` with `headers` (a `host` is added for HTTP/1.1).
pub fn post(path: &str, headers: &[(&str, &str)]) -> Request<()> {
    let mut request = Request::post(format!("http://localhost{path}")).body(()).expect("valid request");
    for (name, value) in headers {
        request.headers_mut().append(
            http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            http::HeaderValue::from_str(value).expect("header value"),
        );
    }
    request
}

/// `payload` in a Connect envelope (gRPC's length prefix) with `flags`.
pub fn envelope(flags: u8, payload: &[u8]) -> Vec<u8> {
    framing::encode(flags, payload)
}

/// The envelopes of a body: each one's flags and payload.
pub fn envelopes(mut body: &[u8]) -> Vec<(u8, Bytes)> {
    let mut out = Vec::new();
    while let Some((prefix, rest)) = body.split_first_chunk::<{ framing::PREFIX_LEN }>() {
        let (flags, len) = framing::decode_prefix(*prefix);
        let (payload, rest) = rest.split_at(len as usize);
        out.push((flags, Bytes::copy_from_slice(payload)));
        body = rest;
    }
    assert!(body.is_empty(), "the body ends inside an envelope prefix: {body:?}");
    out
}
