//! The Connect protocol on the gRPC port: unary calls in JSON and binary,
//! streams of each kind, errors as the protocol's JSON with its HTTP status,
//! deadlines, compression and metadata, over HTTP/1.1 and HTTP/2.

use std::io::{Read, Write};

use bytes::Bytes;
use http::{StatusCode, Version};
use integration_tests::{
    TestServer,
    wire::web::{envelope, envelopes, post, send},
};
use prost::Message;
use serde_json::json;

const UNARY: &str = "/ConnectService/UnaryRPC";
const JSON: (&str, &str) = ("content-type", "application/json");
const STREAM_JSON: (&str, &str) = ("content-type", "application/connect+json");

fn json_envelopes(body: &[u8]) -> Vec<(u8, serde_json::Value)> {
    envelopes(body)
        .into_iter()
        .map(|(flags, payload)| (flags, serde_json::from_slice(&payload).unwrap()))
        .collect()
}

#[tokio::test]
async fn unary_json_over_both_http_versions() {
    let server = TestServer::start_with_args(&["--server-id", "node-web"]).await;
    for version in [Version::HTTP_11, Version::HTTP_2] {
        let request = post(UNARY, &[JSON, ("connect-protocol-version", "1"), ("x-request-id", "web-1")]);
        let response =
            send(server.addr, version, request, Bytes::from_static(br#"{"requestData":"web"}"#)).await;
        assert_eq!(response.status, StatusCode::OK, "{version:?}");
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(response.header("x-request-id"), Some("web-1"));
        assert_eq!(response.header("x-served-by"), Some("node-web"));
        assert_eq!(response.json(), json!({"responseData": "Hello, web"}));
    }
    // The snake_case field name is accepted too.
    let request = post(UNARY, &[JSON]);
    let response =
        send(server.addr, Version::HTTP_11, request, Bytes::from_static(br#"{"request_data":"snake"}"#))
            .await;
    assert_eq!(response.json(), json!({"responseData": "Hello, snake"}));
    assert_eq!(server.stats.snapshot().unary, 3);
}

#[tokio::test]
async fn unary_binary() {
    let server = TestServer::start().await;
    let body = integration_tests::request("proto").encode_to_vec();
    let request = post(UNARY, &[("content-type", "application/proto")]);
    let response = send(server.addr, Version::HTTP_11, request, body.into()).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.header("content-type"), Some("application/proto"));
    let message = connect_proto::ResponseMessage::decode(response.body).unwrap();
    assert_eq!(message.response_data, "Hello, proto");
}

#[tokio::test]
async fn an_error_is_json_with_its_http_status_and_details() {
    let server = TestServer::start().await;
    let request = post("/ConnectService/ServerStreamRPC", &[STREAM_JSON]);
    let body = envelope(0, br#"{"requestData":"x","count":5000000}"#);
    let response = send(server.addr, Version::HTTP_11, request, body.into()).await;
    // A stream's error travels in its end-of-stream message; the HTTP status stays 200.
    assert_eq!(response.status, StatusCode::OK);
    let ends = json_envelopes(&response.body);
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].0, 0b10);
    let error = &ends[0].1["error"];
    assert_eq!(error["code"], "invalid_argument");
    assert_eq!(error["message"], "count must be at most 1000000");
    assert_eq!(error["details"][0]["type"], "google.rpc.BadRequest");
    assert_eq!(
        error["details"][0]["debug"],
        json!({"fieldViolations": [{"field": "count", "description": "count must be at most 1000000"}]})
    );
}

#[tokio::test]
async fn unknown_method_is_unimplemented() {
    let server = TestServer::start().await;
    for path in ["/ConnectService/Nope", "/nope.Service/Call"] {
        let response =
            send(server.addr, Version::HTTP_11, post(path, &[JSON]), Bytes::from_static(b"{}")).await;
        assert_eq!(response.status, StatusCode::NOT_IMPLEMENTED, "{path}");
        assert_eq!(response.json()["code"], "unimplemented", "{path}");
    }
}

#[tokio::test]
async fn unauthenticated_is_401() {
    let server = TestServer::start_with_args(&["--auth-token", "s3cret"]).await;
    let response = send(server.addr, Version::HTTP_11, post(UNARY, &[JSON]), Bytes::from_static(b"{}")).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert_eq!(response.json()["code"], "unauthenticated");
    let request = post(UNARY, &[JSON, ("authorization", "Bearer s3cret")]);
    let response = send(server.addr, Version::HTTP_11, request, Bytes::from_static(b"{}")).await;
    assert_eq!(response.json(), json!({"responseData": "Hello, "}));
}

#[tokio::test]
async fn server_stream_over_http1_ends_with_its_trailers() {
    let server = TestServer::start().await;
    let request = post("/ConnectService/ServerStreamRPC", &[STREAM_JSON]);
    let body = envelope(0, br#"{"requestData":"s","count":3}"#);
    let response = send(server.addr, Version::HTTP_11, request, body.into()).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.header("content-type"), Some("application/connect+json"));
    assert_eq!(
        json_envelopes(&response.body),
        [
            (0, json!({"responseData": "Hello, s: server(1) "})),
            (0, json!({"responseData": "Hello, s: server(2) "})),
            (0, json!({"responseData": "Hello, s: server(3) "})),
            (2, json!({"metadata": {"x-message-count": ["3"]}})),
        ]
    );
}

#[tokio::test]
async fn client_stream_over_http1() {
    let server = TestServer::start().await;
    let request = post("/ConnectService/ClientStreamRPC", &[STREAM_JSON]);
    let mut body = envelope(0, br#"{"requestData":"Ann"}"#);
    body.extend(envelope(0, br#"{"request_data":"Bob"}"#));
    let response = send(server.addr, Version::HTTP_11, request, body.into()).await;
    assert_eq!(
        json_envelopes(&response.body),
        [(0, json!({"responseData": "Hello, Ann, Bob"})), (2, json!({}))]
    );
}

#[tokio::test]
async fn bidi_in_binary_over_http2_and_refused_over_http1() {
    let server = TestServer::start().await;
    let path = "/ConnectService/BidiStreamRPC";
    let mut body = envelope(0, &integration_tests::request("ping").encode_to_vec());
    body.extend(envelope(0, &integration_tests::request("pong").encode_to_vec()));
    let request = post(path, &[("content-type", "application/connect+proto")]);
    let response = send(server.addr, Version::HTTP_2, request, body.clone().into()).await;
    let messages = envelopes(&response.body);
    assert_eq!(messages.len(), 3);
    let text =
        |payload: &Bytes| connect_proto::ResponseMessage::decode(payload.clone()).unwrap().response_data;
    assert_eq!(text(&messages[0].1), "Hello, ping");
    assert_eq!(text(&messages[1].1), "Hello, pong");
    assert_eq!(messages[2].0, 2);
    let request = post(path, &[("content-type", "application/connect+proto")]);
    let response = send(server.addr, Version::HTTP_11, request, body.into()).await;
    assert_eq!(response.status, StatusCode::HTTP_VERSION_NOT_SUPPORTED);
    assert_eq!(response.text(), "a bidirectional stream needs HTTP/2\n");
}

#[tokio::test]
async fn the_deadline_is_connect_timeout_ms() {
    let server = TestServer::start().await;
    let request = post("/ConnectService/ServerStreamRPC", &[STREAM_JSON, ("connect-timeout-ms", "250")]);
    let body = envelope(0, br#"{"requestData":"slow","count":10,"intervalMs":100}"#);
    let response = send(server.addr, Version::HTTP_11, request, body.into()).await;
    let messages = json_envelopes(&response.body);
    let (flags, end) = messages.last().unwrap();
    assert_eq!(*flags, 2);
    assert_eq!(end["error"]["code"], "deadline_exceeded");
    // 250 ms at 100 ms apart: the first message at once, then two or three more.
    assert!((3..=4).contains(&(messages.len() - 1)), "{messages:?}");
}

#[tokio::test]
async fn gzip_both_ways() {
    let server = TestServer::start().await;
    let long = "x".repeat(4000);
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(json!({"requestData": long}).to_string().as_bytes()).unwrap();
    let request = post(UNARY, &[JSON, ("content-encoding", "gzip"), ("accept-encoding", "gzip")]);
    let response = send(server.addr, Version::HTTP_11, request, gzip.finish().unwrap().into()).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.header("content-encoding"), Some("gzip"));
    let mut json = String::new();
    flate2::read::GzDecoder::new(&response.body[..]).read_to_string(&mut json).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json).unwrap(),
        json!({"responseData": format!("Hello, {long}")})
    );
}

#[tokio::test]
async fn connect_calls_are_counted_like_grpc_ones() {
    let server = TestServer::start_with_args(&["--metrics-addr", "127.0.0.1:0"]).await;
    let response = send(server.addr, Version::HTTP_11, post(UNARY, &[JSON]), Bytes::from_static(b"{}")).await;
    assert_eq!(response.status, StatusCode::OK);
    let metrics = integration_tests::scrape::http_get(server.metrics_addr.unwrap(), "/metrics").await.1;
    let line = r#"grpc_server_handled_total{grpc_code="OK",grpc_method="UnaryRPC",grpc_service="ConnectService",grpc_type="unary"} 1"#;
    assert!(metrics.lines().any(|l| l == line), "{metrics}");
}

#[tokio::test]
async fn every_served_service_speaks_json() {
    let server = TestServer::start().await;
    let request = post("/grpc.health.v1.Health/Check", &[JSON]);
    let response =
        send(server.addr, Version::HTTP_11, request, Bytes::from_static(br#"{"service":"ConnectService"}"#))
            .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), json!({"status": "SERVING"}));
}

#[tokio::test]
async fn an_idle_http1_keep_alive_connection_is_closed_at_the_idle_timeout() {
    let server = TestServer::start_with_args(&["--idle-timeout", "300ms"]).await;
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    let connection = tokio::spawn(connection);
    let request = post(UNARY, &[JSON]).map(|()| http_body_util::Full::new(Bytes::from_static(b"{}")));
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    drop(response);
    let started = std::time::Instant::now();
    // Kept alive after the call, then closed by the server once idle for 300 ms.
    tokio::time::timeout(integration_tests::PROMPTLY, connection)
        .await
        .expect("closed by the server")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(250), "{:?}", started.elapsed());
    tokio::time::timeout(integration_tests::PROMPTLY, server.connections.wait_until_at_most(0))
        .await
        .expect("connection released");
}
