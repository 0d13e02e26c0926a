//! Call metadata: the request id echo, the server's name, the message-count trailer.

use connect_proto::RequestMessage;
use futures::StreamExt;
use integration_tests::{TestServer, request};
use tonic::Request;

fn with_request_id(data: &str, id: &'static str) -> Request<RequestMessage> {
    let mut call = Request::new(request(data));
    call.metadata_mut().insert("x-request-id", id.parse().unwrap());
    call
}

#[tokio::test]
async fn echoes_the_client_request_id() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let response = client.unary_rpc(with_request_id("People", "req-42")).await.unwrap();
    assert_eq!(response.metadata().get("x-request-id").unwrap(), "req-42");
    assert_eq!(response.get_ref().response_data, "Hello, People");
}

#[tokio::test]
async fn generates_a_uuid_request_id_when_the_client_sends_none() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let first = client.unary_rpc(request("a")).await.unwrap();
    let second = client.unary_rpc(request("b")).await.unwrap();
    let id = |response: &tonic::Response<_>| {
        let text = response.metadata().get("x-request-id").unwrap().to_str().unwrap().to_owned();
        let uuid = uuid::Uuid::parse_str(&text).unwrap();
        assert_eq!(uuid.get_version_num(), 4, "{text} is not a v4 UUID");
        assert_eq!(text, uuid.hyphenated().to_string(), "lower-case hyphenated form");
        text
    };
    assert_ne!(id(&first), id(&second));
}

#[tokio::test]
async fn names_itself_hostname_and_port_by_default() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let response = client.unary_rpc(request("People")).await.unwrap();
    let expected = format!("{}:{}", gethostname::gethostname().to_string_lossy(), server.addr.port());
    assert_eq!(response.metadata().get("x-served-by").unwrap(), expected.as_str());
}

#[tokio::test]
async fn names_itself_with_server_id() {
    let server = TestServer::start_with_args(&["--server-id", "node-7"]).await;
    let mut client = server.client().await;
    let response = client.unary_rpc(request("People")).await.unwrap();
    assert_eq!(response.metadata().get("x-served-by").unwrap(), "node-7");
}

#[tokio::test]
async fn stream_metadata_arrives_first_and_counts_arrive_last() {
    let server = TestServer::start_with_args(&["--server-id", "node-7"]).await;
    let mut client = server.client().await;
    let mut call = with_request_id("People", "stream-1");
    call.get_mut().count = 3;
    let response = client.server_stream_rpc(call).await.unwrap();
    // Streaming responses keep initial metadata and trailers apart.
    assert_eq!(response.metadata().get("x-request-id").unwrap(), "stream-1");
    assert_eq!(response.metadata().get("x-served-by").unwrap(), "node-7");
    assert!(response.metadata().get("x-message-count").is_none());
    let mut stream = response.into_inner();
    let mut received = Vec::new();
    while let Some(message) = stream.message().await.unwrap() {
        received.push(message.response_data);
    }
    assert_eq!(
        received,
        ["Hello, People: server(1) ", "Hello, People: server(2) ", "Hello, People: server(3) "]
    );
    let trailers = stream.trailers().await.unwrap().unwrap();
    assert_eq!(trailers.get("x-message-count").unwrap(), "3");
}

#[tokio::test]
async fn bidi_counts_its_replies_in_the_trailer() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let requests = futures::stream::iter([request("a"), request("b")]);
    let mut stream = client.bidi_stream_rpc(requests).await.unwrap().into_inner();
    let replies: Vec<String> =
        (&mut stream).map(|reply| reply.unwrap().response_data).collect::<Vec<_>>().await;
    assert_eq!(replies, ["Hello, a", "Hello, b"]);
    let trailers = stream.trailers().await.unwrap().unwrap();
    assert_eq!(trailers.get("x-message-count").unwrap(), "2");
}

#[tokio::test]
async fn errors_carry_the_request_id_too() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut call = with_request_id("People", "bad-1");
    call.get_mut().count = 2_000_000;
    let status = client.server_stream_rpc(call).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    // A call that fails before its first message is trailers-only: the ids come with the status.
    assert_eq!(status.metadata().get("x-request-id").unwrap(), "bad-1");
}

#[test]
fn a_server_id_that_is_no_header_value_fails_before_serving() {
    let config = <connect_server::Config as clap::Parser>::parse_from([
        "connect-server",
        "--metrics-addr",
        "off",
        "--server-id",
        "bad\nid",
    ]);
    let error = connect_server::ConnectServer::new(config).expect_err("an invalid server id");
    assert_eq!(error.to_string(), "server id \"bad\\nid\" is not a valid header value");
}
