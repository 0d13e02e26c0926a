//! Requests with the wrong headers or path, over raw HTTP/2: each gets a
//! precise answer, and a normal client on another connection is served afterwards.

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use integration_tests::{
    TestServer, assert_still_serving,
    wire::{UNARY_PATH, client, grpc::grpc_message},
};
use prost::Message;
use tonic::Code;

fn hello_body() -> Bytes {
    grpc_message(&integration_tests::request("headers").encode_to_vec())
}

/// The body of a 415 from a server with only gRPC on.
const GRPC_ONLY_415: &str =
    "unsupported content type; this server accepts application/grpc, application/grpc+proto\n";

async fn content_type_answer(content_type: Option<&'static str>, args: &[&str], text: &str) {
    let server = TestServer::start_with_args(args).await;
    let mut client = client::h2_connect(server.addr).await;
    let mut request = client::grpc_request(UNARY_PATH);
    match content_type {
        Some(value) => request.headers_mut().insert("content-type", HeaderValue::from_static(value)),
        None => request.headers_mut().remove("content-type"),
    };
    let response = client::send(&mut client, request, hello_body()).await;
    assert_eq!(response.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "content-type {content_type:?}");
    assert_eq!(response.grpc_status(), None, "a 415 is plain HTTP, not a gRPC status");
    assert_eq!(response.body, text.as_bytes(), "the 415 names what the server accepts");
    assert_eq!(server.stats.snapshot().unary, 0, "the handler must not run");
    // Finished as the response leaves (UNKNOWN, what a gRPC client makes of a 415), never as cancelled.
    assert_eq!(server.stats.snapshot().cancelled, 0, "a 415 is not a cancelled call");
    // The same connection still carries gRPC.
    let ok = client::send(&mut client, client::grpc_request(UNARY_PATH), hello_body()).await;
    assert_eq!(ok.grpc_status(), Some(0));
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn json_content_type_is_http_415_when_connect_is_off() {
    content_type_answer(Some("application/json"), &["--protocols", "grpc"], GRPC_ONLY_415).await;
}

#[tokio::test]
async fn grpc_web_content_type_is_http_415_when_grpc_web_is_off() {
    content_type_answer(
        Some("application/grpc-web"),
        &["--protocols", "grpc,connect"],
        concat!(
            "unsupported content type; this server accepts application/grpc, application/grpc+proto, ",
            "application/proto, application/json, application/connect+proto, application/connect+json\n"
        ),
    )
    .await;
}

#[tokio::test]
async fn missing_content_type_is_http_415() {
    content_type_answer(
        None,
        &[],
        concat!(
            "unsupported content type; this server accepts application/grpc, application/grpc+proto, ",
            "application/grpc-web, application/grpc-web+proto, application/grpc-web-text, ",
            "application/proto, application/json, application/connect+proto, application/connect+json\n"
        ),
    )
    .await;
}

#[tokio::test]
async fn grpc_is_http_415_when_it_is_off() {
    let server = TestServer::start_with_args(&["--protocols", "connect"]).await;
    let mut client = client::h2_connect(server.addr).await;
    let response = client::send(&mut client, client::grpc_request(UNARY_PATH), hello_body()).await;
    assert_eq!(response.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        response.body,
        concat!(
            "unsupported content type; this server accepts ",
            "application/proto, application/json, application/connect+proto, application/connect+json\n"
        )
        .as_bytes()
    );
    assert_eq!(server.stats.snapshot().unary, 0, "the handler must not run");
}

#[tokio::test]
async fn grpc_proto_content_type_is_served() {
    let server = TestServer::start().await;
    let mut client = client::h2_connect(server.addr).await;
    let mut request = client::grpc_request(UNARY_PATH);
    request.headers_mut().insert("content-type", HeaderValue::from_static("application/grpc+proto"));
    let response = client::send(&mut client, request, hello_body()).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.grpc_status(), Some(0));
}

#[tokio::test]
async fn missing_te_trailers_is_still_served() {
    // Like grpc-go, the server does not insist on `te: trailers` (some proxies drop it);
    // the answer is a normal gRPC response with its status in the trailers.
    let server = TestServer::start().await;
    let mut client = client::h2_connect(server.addr).await;
    let mut request = client::grpc_request(UNARY_PATH);
    request.headers_mut().remove("te");
    let response = client::send(&mut client, request, hello_body()).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.grpc_status(), Some(0));
    let reply = connect_proto::ResponseMessage::decode(&response.body[5..]).expect("decodable reply");
    assert_eq!(reply.response_data, "Hello, headers");
    assert_eq!(server.stats.snapshot().unary, 1);
}

async fn unimplemented_for(path: &str) {
    let server = TestServer::start().await;
    let mut client = client::h2_connect(server.addr).await;
    let response = client::send(&mut client, client::grpc_request(path), hello_body()).await;
    assert_eq!(response.status, StatusCode::OK, "{path}");
    assert_eq!(response.grpc_status(), Some(Code::Unimplemented as i32), "{path}");
    assert!(response.trailers.is_none(), "{path}: a trailers-only answer");
    assert_eq!(server.stats.snapshot(), Default::default(), "{path}: no handler ran");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn unknown_service_is_unimplemented() {
    unimplemented_for("/NoSuchService/UnaryRPC").await;
}

#[tokio::test]
async fn unknown_method_is_unimplemented() {
    unimplemented_for("/ConnectService/NoSuchRPC").await;
}

#[tokio::test]
async fn package_qualified_path_is_unimplemented() {
    // The wire contract has no package: `/connect.ConnectService/...` is not ours.
    unimplemented_for("/connect.ConnectService/UnaryRPC").await;
}

#[tokio::test]
async fn unimplemented_via_the_real_client() {
    let server = TestServer::start().await;
    let channel = tonic::transport::Channel::from_shared(server.url()).unwrap().connect().await.unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/ConnectService/NoSuchRPC");
    let status = grpc
        .unary::<_, connect_proto::ResponseMessage, _>(
            tonic::Request::new(integration_tests::request("x")),
            path,
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
}

#[tokio::test]
async fn a_grpc_timeout_ending_in_a_multi_byte_character_is_ignored() {
    let server = TestServer::start().await;
    let mut client = client::h2_connect(server.addr).await;
    // `1é`: valid UTF-8 whose last byte is not a character boundary (this once panicked).
    for value in [&b"1\xc3\xa9"[..], b"\xc3\xa9", b"+1S"] {
        let mut request = client::grpc_request(UNARY_PATH);
        request
            .headers_mut()
            .insert("grpc-timeout", HeaderValue::from_bytes(value).expect("obs-text is allowed"));
        let response = client::send(&mut client, request, hello_body()).await;
        assert_eq!(response.grpc_status(), Some(0), "grpc-timeout {value:?}: served with no deadline");
    }
    assert_still_serving(&server).await;
}
