//! `ClientStreamRPC`: many requests, one response after the client half-closes.

use integration_tests::{TestServer, request};
use tonic::Code;

#[tokio::test]
async fn joins_every_request_in_order() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let requests = futures::stream::iter(["a", "b", "c"].map(request));
    let response = client.client_stream_rpc(requests).await.unwrap().into_inner();
    assert_eq!(response.response_data, "Hello, a, b, c");
}

#[tokio::test]
async fn an_empty_stream_gets_an_empty_greeting() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let response = client.client_stream_rpc(futures::stream::empty()).await.unwrap().into_inner();
    assert_eq!(response.response_data, "Hello, ");
}

#[tokio::test]
async fn too_much_data_is_resource_exhausted() {
    let server = TestServer::start_with_args(&["--max-client-stream-bytes", "10"]).await;
    let mut client = server.client().await;
    let requests = futures::stream::iter(["123456", "7890", "x"].map(request));
    let status = client.client_stream_rpc(requests).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(status.message(), "client stream request_data exceeds 10 bytes");
}
