//! Edge payloads: empty `request_data`, empty client streams, and messages
//! over 64 KiB (larger than HTTP/2's default window, so flow control must work).

use connect_proto::RequestMessage;
use futures::StreamExt;
use integration_tests::{TestServer, request};

/// 100 KiB: more than the 64 KiB initial HTTP/2 stream window.
const BIG: usize = 100 * 1024;

#[tokio::test]
async fn empty_request_data_everywhere() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    assert_eq!(client.unary_rpc(request("")).await.unwrap().into_inner().response_data, "Hello, ");
    let message = RequestMessage { request_data: String::new(), count: 2, interval_ms: 0 };
    let replies: Vec<_> = client.server_stream_rpc(message).await.unwrap().into_inner().collect().await;
    let replies: Vec<String> = replies.into_iter().map(|reply| reply.unwrap().response_data).collect();
    assert_eq!(replies, ["Hello, : server(1) ", "Hello, : server(2) "]);
    let requests = futures::stream::iter([request(""), request("")]);
    assert_eq!(client.client_stream_rpc(requests).await.unwrap().into_inner().response_data, "Hello, , ");
    let requests = futures::stream::iter([request("")]);
    let replies: Vec<_> = client.bidi_stream_rpc(requests).await.unwrap().into_inner().collect().await;
    assert_eq!(
        replies.into_iter().map(|reply| reply.unwrap().response_data).collect::<Vec<_>>(),
        ["Hello, "]
    );
}

#[tokio::test]
async fn empty_client_streams() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let response = client.client_stream_rpc(futures::stream::empty()).await.unwrap();
    assert_eq!(response.into_inner().response_data, "Hello, ");
    let mut stream = client.bidi_stream_rpc(futures::stream::empty()).await.unwrap().into_inner();
    assert!(stream.message().await.unwrap().is_none());
    assert_eq!(stream.trailers().await.unwrap().unwrap().get("x-message-count").unwrap(), "0");
}

#[tokio::test]
async fn big_messages_in_every_kind_of_call() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let big = "x".repeat(BIG);
    let hello_big = format!("Hello, {big}");

    let response = client.unary_rpc(request(&big)).await.unwrap().into_inner();
    assert_eq!(response.response_data, hello_big);

    let message = RequestMessage { request_data: big.clone(), count: 5, interval_ms: 0 };
    let replies: Vec<_> = client.server_stream_rpc(message).await.unwrap().into_inner().collect().await;
    assert_eq!(replies.len(), 5);
    for (i, reply) in replies.into_iter().enumerate() {
        assert_eq!(reply.unwrap().response_data, format!("Hello, {big}: server({}) ", i + 1));
    }

    let requests = futures::stream::iter(vec![request(&big); 3]);
    let response = client.client_stream_rpc(requests).await.unwrap().into_inner();
    assert_eq!(response.response_data, format!("Hello, {big}, {big}, {big}"));

    let requests = futures::stream::iter(vec![request(&big); 4]);
    let replies: Vec<_> = client.bidi_stream_rpc(requests).await.unwrap().into_inner().collect().await;
    assert_eq!(replies.len(), 4);
    assert!(replies.into_iter().all(|reply| reply.unwrap().response_data == hello_big));
}
