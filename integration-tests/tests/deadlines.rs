//! Deadlines: the client's `grpc-timeout` ends every kind of call with
//! `DEADLINE_EXCEEDED` (tonic alone would answer `CANCELLED`, or not stop a stream at all).

use std::time::Duration;

use connect_proto::RequestMessage;
use http::HeaderValue;
use integration_tests::{
    PROMPTLY, TestServer, request,
    wire::{CLIENT_STREAM_PATH, client, grpc::request_message},
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request};

fn with_timeout<T>(message: T, timeout: Duration) -> Request<T> {
    let mut call = Request::new(message);
    call.set_timeout(timeout);
    call
}

#[tokio::test]
async fn server_stream_stops_at_the_deadline() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let message = RequestMessage { request_data: "late".into(), count: 1000, interval_ms: 50 };
    let mut stream = client
        .server_stream_rpc(with_timeout(message, Duration::from_millis(300)))
        .await
        .unwrap()
        .into_inner();
    let mut received = 0u32;
    let status = loop {
        match stream.message().await {
            Ok(Some(_)) => received += 1,
            Ok(None) => panic!("the stream ended without the deadline"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(status.message(), "deadline exceeded");
    assert!((1..1000).contains(&received), "received {received}");
    assert_eq!(status.metadata().get("x-message-count").unwrap(), received.to_string().as_str());
    let stats = server.stats.wait_until(|s| s.streams_open == 0).await;
    assert_eq!((stats.deadline_exceeded, stats.cancelled), (1, 0));
}

#[tokio::test]
async fn client_stream_ends_with_deadline_exceeded_not_cancelled() {
    let server = TestServer::start().await;
    // Any server-side timer on the same deadline that answered CANCELLED would lose this race
    // sometimes (tonic's transport server had one); repeat to catch it.
    // (The bare client: tonic's own client would time out by itself first, just as racily.)
    for round in 1..=5u64 {
        let mut call = client::grpc_request(CLIENT_STREAM_PATH);
        call.headers_mut().insert("grpc-timeout", HeaderValue::from_static("40m"));
        let response = client::call(server.addr, call, request_message(&request("waiting")), false).await;
        // The message as it travels: percent-encoded.
        assert_eq!(
            (response.grpc_status(), response.grpc_header("grpc-message").as_deref()),
            (Some(4), Some("deadline%20exceeded"))
        );
        let stats = server.stats.wait_until(|s| s.deadline_exceeded == round && s.streams_open == 0).await;
        assert_eq!(stats.cancelled, 0);
    }
}

#[tokio::test]
async fn bidi_ends_with_deadline_exceeded() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let (tx, rx) = mpsc::channel(1);
    tx.send(request("first")).await.unwrap();
    let call = with_timeout(ReceiverStream::new(rx), Duration::from_millis(200));
    let mut stream = client.bidi_stream_rpc(call).await.unwrap().into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().response_data, "Hello, first");
    let status = stream.message().await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::DeadlineExceeded, "deadline exceeded"));
    assert_eq!(status.metadata().get("x-message-count").unwrap(), "1");
    drop(tx);
    let stats = server.stats.wait_until(|s| s.streams_open == 0).await;
    assert_eq!((stats.deadline_exceeded, stats.cancelled), (1, 0));
}

#[tokio::test]
async fn calls_within_their_deadline_succeed() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let response = client.unary_rpc(with_timeout(request("quick"), PROMPTLY)).await.unwrap();
    assert_eq!(response.get_ref().response_data, "Hello, quick");
    let message = RequestMessage { request_data: "quick".into(), count: 2, interval_ms: 0 };
    let mut stream = client.server_stream_rpc(with_timeout(message, PROMPTLY)).await.unwrap().into_inner();
    let mut received = 0;
    while stream.message().await.unwrap().is_some() {
        received += 1;
    }
    assert_eq!(received, 2);
    assert_eq!(server.stats.snapshot().deadline_exceeded, 0);
}
