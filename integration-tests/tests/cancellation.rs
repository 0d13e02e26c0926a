//! Cancellation (the gRPC interop suite's `cancel_after_begin` and
//! `cancel_after_first_response`): when the client resets the call, the
//! server's producer stops within 100 ms and the call counts as cancelled.

use std::time::Duration;

use connect_proto::RequestMessage;
use integration_tests::{PROMPTLY, TestServer, request};
use tokio::{sync::mpsc, time::timeout};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Code;

/// How soon after the reset the server must have stopped (the bound).
const STOP_WITHIN: Duration = Duration::from_millis(100);

/// Asserts that the server ends the one open call within [`STOP_WITHIN`], counted as
/// cancelled (not as past its deadline).
async fn assert_stopped_as_cancelled(server: &TestServer) {
    let stats = timeout(STOP_WITHIN, server.stats.wait_until(|s| s.streams_open == 0 && s.cancelled == 1))
        .await
        .unwrap_or_else(|_| panic!("server stopped the call within 100 ms: {:?}", server.stats.snapshot()));
    assert_eq!(stats.deadline_exceeded, 0);
}

#[tokio::test]
async fn cancel_after_begin_client_stream() {
    let server = TestServer::start().await;
    let token = CancellationToken::new();
    let mut client = server.cancellable_client(token.clone()).await;
    let (tx, rx) = mpsc::channel::<RequestMessage>(1);
    let call = tokio::spawn(async move { client.client_stream_rpc(ReceiverStream::new(rx)).await });
    // Begun: the handler is running and waiting for requests.
    timeout(PROMPTLY, server.stats.wait_until(|s| s.client_stream == 1 && s.streams_open == 1))
        .await
        .unwrap();
    token.cancel();
    let status = call.await.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::Cancelled);
    assert_stopped_as_cancelled(&server).await;
    drop(tx);
}

#[tokio::test]
async fn cancel_after_begin_bidi() {
    let server = TestServer::start().await;
    let token = CancellationToken::new();
    let mut client = server.cancellable_client(token.clone()).await;
    let (tx, rx) = mpsc::channel::<RequestMessage>(1);
    let mut stream = client.bidi_stream_rpc(ReceiverStream::new(rx)).await.unwrap().into_inner();
    timeout(PROMPTLY, server.stats.wait_until(|s| s.bidi == 1 && s.streams_open == 1)).await.unwrap();
    token.cancel();
    assert_eq!(stream.message().await.unwrap_err().code(), Code::Cancelled);
    assert_stopped_as_cancelled(&server).await;
    drop(tx);
}

#[tokio::test]
async fn cancel_after_first_response_bidi() {
    let server = TestServer::start().await;
    let token = CancellationToken::new();
    let mut client = server.cancellable_client(token.clone()).await;
    let (tx, rx) = mpsc::channel(1);
    tx.send(request("one")).await.unwrap();
    let mut stream = client.bidi_stream_rpc(ReceiverStream::new(rx)).await.unwrap().into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().response_data, "Hello, one");
    token.cancel();
    assert_eq!(stream.message().await.unwrap_err().code(), Code::Cancelled);
    assert_stopped_as_cancelled(&server).await;
    drop(tx);
}

#[tokio::test]
async fn cancel_after_first_response_server_stream_stops_a_long_pause() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    // A minute between responses: the producer must notice the reset while it waits.
    let message = RequestMessage { request_data: "slow".into(), count: 1000, interval_ms: 60_000 };
    let mut stream = client.server_stream_rpc(message).await.unwrap().into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().response_data, "Hello, slow: server(1) ");
    drop(stream);
    assert_stopped_as_cancelled(&server).await;
}

#[tokio::test]
async fn the_server_keeps_serving_after_cancellations() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let message = RequestMessage { request_data: "slow".into(), count: 1000, interval_ms: 60_000 };
    let stream = client.server_stream_rpc(message).await.unwrap().into_inner();
    drop(stream);
    timeout(PROMPTLY, server.stats.wait_until(|s| s.cancelled == 1)).await.unwrap();
    let response = client.unary_rpc(request("still here")).await.unwrap();
    assert_eq!(response.get_ref().response_data, "Hello, still here");
}
