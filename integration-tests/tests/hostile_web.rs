//! Bad input on the web protocols: each gets the protocol's clear error (a
//! JSON error with its HTTP status, an end-of-stream error, or a plain HTTP
//! status), nothing is buffered past the message limits, and the server
//! keeps serving.

use std::{io::Write, time::Duration};

use bytes::Bytes;
use http::{Method, Request, StatusCode, Version};
use integration_tests::{
    PROMPTLY, TestServer, assert_still_serving,
    wire::web::{envelope, envelopes, post, send},
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const UNARY: &str = "/ConnectService/UnaryRPC";
const JSON: (&str, &str) = ("content-type", "application/json");
const STREAM_JSON: (&str, &str) = ("content-type", "application/connect+json");

async fn unary_error(
    server: &TestServer,
    headers: &[(&str, &str)],
    body: Bytes,
) -> (StatusCode, serde_json::Value) {
    let response = send(server.addr, Version::HTTP_11, post(UNARY, headers), body).await;
    assert_eq!(response.header("content-type"), Some("application/json"));
    (response.status, response.json())
}

#[tokio::test]
async fn malformed_json_is_invalid_argument() {
    let server = TestServer::start().await;
    let (status, error) = unary_error(&server, &[JSON], Bytes::from_static(br#"{"requestData":5}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error,
        json!({"code": "invalid_argument", "message": "invalid JSON for RequestMessage: invalid type: integer `5`, expected a string at line 1 column 16"})
    );
    // Refused inside the stack, as the service reads the message: the call has its request id.
    let request = post(UNARY, &[JSON, ("x-request-id", "bad-json")]);
    let response = send(server.addr, Version::HTTP_11, request, Bytes::from_static(b"[]")).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.header("x-request-id"), Some("bad-json"));
    let (status, error) = unary_error(&server, &[JSON], Bytes::from_static(b"\xff\xfe")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["code"], "invalid_argument");
    assert_eq!(server.stats.snapshot().unary, 0, "the handler never ran");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_body_over_the_message_limit_is_refused() {
    let server = TestServer::start_with_args(&["--max-recv-message-size", "1024"]).await;
    let body = json!({"requestData": "x".repeat(2000)}).to_string();
    let (status, error) = unary_error(&server, &[JSON], body.into()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        error,
        json!({"code": "resource_exhausted", "message": "message is larger than the limit of 1024 bytes"})
    );
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_compression_bomb_is_refused() {
    let server = TestServer::start_with_args(&["--max-recv-message-size", "65536"]).await;
    // 16 MiB of JSON whitespace, gzip'd to a few KiB.
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gzip.write_all(&vec![b' '; 16 << 20]).unwrap();
    let bomb = gzip.finish().unwrap();
    assert!(bomb.len() < 65536);
    let (status, error) = unary_error(&server, &[JSON, ("content-encoding", "gzip")], bomb.into()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        error,
        json!({"code": "resource_exhausted", "message": "message is larger than the limit of 65536 bytes"})
    );
}

#[tokio::test]
async fn bad_protocol_headers_are_named() {
    let server = TestServer::start().await;
    let empty = || Bytes::from_static(b"{}");
    let (status, error) = unary_error(&server, &[JSON, ("connect-timeout-ms", "soon")], empty()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error["message"],
        "connect-timeout-ms must be a positive integer of at most 10 digits, not \"soon\""
    );
    let (status, error) = unary_error(&server, &[JSON, ("content-encoding", "br")], empty()).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(
        error,
        json!({"code": "unimplemented", "message": "unsupported compression \"br\": use gzip, zstd or identity"})
    );
    let (status, error) = unary_error(&server, &[JSON, ("connect-protocol-version", "7")], empty()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["message"], "connect-protocol-version must be 1, not \"7\"");
}

#[tokio::test]
async fn wrong_method_and_shape_are_plain_http_errors() {
    let server = TestServer::start().await;
    let get = Request::builder()
        .method(Method::GET)
        .uri(format!("http://localhost{UNARY}"))
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let response = send(server.addr, Version::HTTP_11, get, Bytes::new()).await;
    assert_eq!(response.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.header("allow"), Some("POST"));
    let response = send(
        server.addr,
        Version::HTTP_11,
        post("/ConnectService/ServerStreamRPC", &[JSON]),
        Bytes::from_static(b"{}"),
    )
    .await;
    assert_eq!(response.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(response.text(), "a streaming method: use application/connect+proto or +json\n");
    let response =
        send(server.addr, Version::HTTP_11, post(UNARY, &[STREAM_JSON]), envelope(0, b"{}").into()).await;
    assert_eq!(response.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(response.text(), "a unary method: use application/proto or application/json\n");
}

async fn stream_end(server: &TestServer, body: Vec<u8>) -> serde_json::Value {
    let request = post("/ConnectService/ClientStreamRPC", &[STREAM_JSON]);
    let response = send(server.addr, Version::HTTP_11, request, body.into()).await;
    assert_eq!(response.status, StatusCode::OK);
    let messages = envelopes(&response.body);
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].0, 2, "only the end-of-stream message");
    serde_json::from_slice(&messages[0].1).unwrap()
}

#[tokio::test]
async fn bad_stream_envelopes_end_the_stream_with_an_error() {
    let server = TestServer::start_with_args(&["--max-recv-message-size", "1024"]).await;
    // A length far over the limit: refused from the prefix, nothing buffered.
    let end = stream_end(&server, vec![0, 0x7f, 0, 0, 0]).await;
    assert_eq!(
        end["error"],
        json!({"code": "resource_exhausted", "message": "message is larger than the limit of 1024 bytes"})
    );
    // A stream cut inside a message.
    let mut cut = envelope(0, br#"{"requestData":"a"}"#);
    cut.truncate(10);
    let end = stream_end(&server, cut).await;
    assert_eq!(
        end["error"],
        json!({"code": "invalid_argument", "message": "the request stream ended inside a message"})
    );
    // An end-of-stream flag from the client.
    let end = stream_end(&server, envelope(2, b"{}")).await;
    assert_eq!(
        end["error"],
        json!({"code": "invalid_argument", "message": "invalid envelope flags 0x02 in a request"})
    );
    // Each call reached its handler, which read the error from its request stream.
    assert_eq!(server.stats.snapshot().client_stream, 3);
    assert_still_serving(&server).await;
}

/// Writes `bytes` on a fresh HTTP/1.1 connection and reads until the server closes it.
async fn raw_http1(server: &TestServer, bytes: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(PROMPTLY, stream.read_to_end(&mut answer)).await.expect("closed promptly").unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn http1_garbage_and_header_floods_are_refused() {
    let server = TestServer::start().await;
    let answer = raw_http1(&server, b"POST /ConnectService/UnaryRPC HTTP/1.1\r\nbad header\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{answer:?}");
    let mut flood = b"POST /ConnectService/UnaryRPC HTTP/1.1\r\nhost: x\r\n".to_vec();
    for i in 0..2000 {
        flood.extend(format!("x-filler-{i}: {}\r\n", "y".repeat(40)).as_bytes());
    }
    flood.extend(b"\r\n");
    let answer = raw_http1(&server, &flood).await;
    assert!(answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{answer:?}");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn slow_http1_headers_are_closed_at_the_handshake_timeout() {
    let server = TestServer::start_with_args(&["--handshake-timeout", "300ms"]).await;
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let started = std::time::Instant::now();
    // Past the first 24 bytes (the preface timeout), then the headers never end.
    stream.write_all(b"POST /ConnectService/UnaryRPC HTTP/1.1\r\nhost: x\r\n").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(PROMPTLY, stream.read_to_end(&mut answer)).await.expect("closed promptly").unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(250), "closed too early: {elapsed:?}");
    tokio::time::timeout(PROMPTLY, server.connections.wait_until_at_most(0))
        .await
        .expect("connection released");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_refused_http1_request_leaves_its_connection_usable() {
    let server = TestServer::start().await;
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let body = |bytes: &'static [u8]| http_body_util::Full::new(Bytes::from_static(bytes));
    let refused = post(UNARY, &[("content-type", "text/plain")]).map(|()| body(&[b'x'; 10_000]));
    let response = sender.send_request(refused).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    http_body_util::BodyExt::collect(response.into_body()).await.unwrap();
    // The same connection, the next request.
    sender.ready().await.expect("the connection is still open");
    let ok = post(UNARY, &[JSON]).map(|()| body(br#"{"requestData":"again"}"#));
    let response = sender.send_request(ok).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap(),
        json!({"responseData": "Hello, again"})
    );
}

/// Writes `bytes` on a fresh HTTP/1.1 connection and reads the answer until
/// the server closes it; returns it and how long that took.
async fn raw_http1_timed(server: &TestServer, bytes: &[u8]) -> (String, Duration) {
    let started = std::time::Instant::now();
    let answer = raw_http1(server, bytes).await;
    (answer, started.elapsed())
}

/// The JSON body of a raw HTTP/1.1 answer.
fn json_body(answer: &str) -> serde_json::Value {
    let (_, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    serde_json::from_str(body).expect("a JSON body")
}

#[tokio::test]
async fn a_stalled_unary_body_ends_at_the_body_read_timeout() {
    let server = TestServer::start_with_args(&["--body-read-timeout", "300ms"]).await;
    // 100 bytes announced, one sent: the server waits 300 ms for the next, not for ever.
    let stalled = b"POST /ConnectService/UnaryRPC HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                    content-length: 100\r\n\r\n{";
    let (answer, elapsed) = raw_http1_timed(&server, stalled).await;
    assert!(answer.starts_with("HTTP/1.1 504 Gateway Timeout\r\n"), "{answer:?}");
    assert_eq!(
        json_body(&answer),
        json!({"code": "deadline_exceeded", "message": "the request body stalled: no bytes for 300 ms (--body-read-timeout)"})
    );
    assert!(elapsed >= Duration::from_millis(250), "ended too early: {elapsed:?}");
    tokio::time::timeout(PROMPTLY, server.connections.wait_until_at_most(0))
        .await
        .expect("connection released");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_malformed_chunked_body_is_invalid_argument() {
    let server = TestServer::start().await;
    let malformed =
        b"POST /ConnectService/UnaryRPC HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                      transfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n";
    let answer = raw_http1(&server, malformed).await;
    assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{answer:?}");
    assert_eq!(
        json_body(&answer),
        json!({"code": "invalid_argument", "message": "the request body is malformed: Invalid chunk size line: missing size digit"})
    );
    assert_still_serving(&server).await;
}
