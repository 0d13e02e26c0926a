//! `BidiStreamRPC`: one reply to each request, as it arrives.

use integration_tests::{TestServer, request};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

#[tokio::test]
async fn answers_each_request_before_the_next_is_sent() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let (tx, rx) = mpsc::channel(1);
    let mut replies = client.bidi_stream_rpc(ReceiverStream::new(rx)).await.unwrap().into_inner();

    // Ping-pong: the next request goes out only after the previous reply came back.
    for name in ["one", "two", "three"] {
        tx.send(request(name)).await.unwrap();
        let reply = replies.message().await.unwrap().unwrap();
        assert_eq!(reply.response_data, format!("Hello, {name}"));
    }
    drop(tx);
    assert!(replies.message().await.unwrap().is_none());
    let trailers = replies.trailers().await.unwrap().unwrap();
    assert_eq!(trailers.get("x-message-count").unwrap(), "3");
}

#[tokio::test]
async fn ends_when_the_client_ends_without_sending() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let mut replies = client.bidi_stream_rpc(futures::stream::empty()).await.unwrap().into_inner();
    assert!(replies.message().await.unwrap().is_none());
}
