//! gRPC-Web on the gRPC port (tonic-web), binary and base64 text, over
//! HTTP/1.1 and HTTP/2, and CORS for pages on other origins.

use base64::{Engine, engine::general_purpose::STANDARD};
use bytes::Bytes;
use http::{Method, Request, StatusCode, Version};
use integration_tests::{
    TestServer,
    wire::web::{envelope, envelopes, post, send},
};
use prost::Message;

const UNARY: &str = "/ConnectService/UnaryRPC";

fn text_of(payload: &Bytes) -> String {
    connect_proto::ResponseMessage::decode(payload.clone()).unwrap().response_data
}

#[tokio::test]
async fn unary_binary_over_both_http_versions() {
    let server = TestServer::start().await;
    for version in [Version::HTTP_11, Version::HTTP_2] {
        let body = envelope(0, &integration_tests::request("web").encode_to_vec());
        let request = post(UNARY, &[("content-type", "application/grpc-web+proto"), ("x-grpc-web", "1")]);
        let response = send(server.addr, version, request, body.into()).await;
        assert_eq!(response.status, StatusCode::OK, "{version:?}");
        assert_eq!(response.header("content-type"), Some("application/grpc-web+proto"));
        assert!(response.header("x-request-id").is_some());
        let frames = envelopes(&response.body);
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert_eq!(text_of(&frames[0].1), "Hello, web");
        // The trailers travel as a last frame with the flag 0x80.
        assert_eq!(frames[1].0, 0x80);
        assert_eq!(frames[1].1, Bytes::from_static(b"grpc-status:0\r\n"));
    }
}

#[tokio::test]
async fn server_stream_in_base64_text() {
    let server = TestServer::start().await;
    let message = connect_proto::RequestMessage { request_data: "t".into(), count: 2, interval_ms: 0 };
    let body = STANDARD.encode(envelope(0, &message.encode_to_vec()));
    let headers = [("content-type", "application/grpc-web-text"), ("accept", "application/grpc-web-text")];
    let request = post("/ConnectService/ServerStreamRPC", &headers);
    let response = send(server.addr, Version::HTTP_11, request, body.into()).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.header("content-type"), Some("application/grpc-web-text+proto"));
    // Each chunk is base64 on its own; decode them one by one.
    let mut decoded = Vec::new();
    let text = response.text().to_owned();
    for chunk in text.split_inclusive('=').flat_map(|part| part.split_inclusive("==")) {
        decoded
            .extend(STANDARD.decode(chunk).unwrap_or_else(|_| panic!("base64 chunk {chunk:?} in {text:?}")));
    }
    let frames = envelopes(&decoded);
    assert_eq!(frames.len(), 3, "{frames:?}");
    assert_eq!(text_of(&frames[0].1), "Hello, t: server(1) ");
    assert_eq!(text_of(&frames[1].1), "Hello, t: server(2) ");
    assert_eq!(frames[2].0, 0x80);
    let trailers = std::str::from_utf8(&frames[2].1).unwrap();
    assert!(
        trailers.contains("grpc-status:0\r\n") && trailers.contains("x-message-count:2\r\n"),
        "{trailers:?}"
    );
}

fn preflight(origin: &str) -> Request<()> {
    Request::builder()
        .method(Method::OPTIONS)
        .uri(format!("http://localhost{UNARY}"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,connect-protocol-version,authorization")
        .body(())
        .unwrap()
}

#[tokio::test]
async fn cors_answers_allowed_origins_only() {
    let server = TestServer::start_with_args(&["--cors-allow-origin", "http://app.test"]).await;
    let response = send(server.addr, Version::HTTP_11, preflight("http://app.test"), Bytes::new()).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.header("access-control-allow-origin"), Some("http://app.test"));
    assert_eq!(response.header("access-control-allow-methods"), Some("POST,GET"));
    assert_eq!(
        response.header("access-control-allow-headers"),
        Some("content-type,connect-protocol-version,authorization")
    );
    assert_eq!(response.header("access-control-max-age"), Some("7200"));

    let other = send(server.addr, Version::HTTP_11, preflight("http://evil.test"), Bytes::new()).await;
    assert_eq!(other.header("access-control-allow-origin"), None);

    let request = post(UNARY, &[("content-type", "application/json"), ("origin", "http://app.test")]);
    let response = send(server.addr, Version::HTTP_11, request, Bytes::from_static(b"{}")).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.header("access-control-allow-origin"), Some("http://app.test"));
    let exposed = response.header("access-control-expose-headers").unwrap();
    assert!(exposed.contains("grpc-status") && exposed.contains("x-request-id"), "{exposed}");
}

#[tokio::test]
async fn no_cors_headers_without_the_flag() {
    let server = TestServer::start().await;
    let request = post(UNARY, &[("content-type", "application/json"), ("origin", "http://app.test")]);
    let response = send(server.addr, Version::HTTP_11, request, Bytes::from_static(b"{}")).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.header("access-control-allow-origin"), None);
    assert_eq!(response.header("vary"), None);
}
