//! `ServerStreamRPC`: one request, `count` responses, `interval_ms` apart.

use std::time::Duration;

use connect_proto::RequestMessage;
use integration_tests::{PROMPTLY, TestServer, Transport, on_both_transports, request};
use tonic::{Code, Request};

fn stream_request(data: &str, count: u32, interval_ms: u32) -> RequestMessage {
    RequestMessage { request_data: data.to_owned(), count, interval_ms }
}

async fn collect(
    client: &mut connect_proto::ConnectServiceClient<tonic::transport::Channel>,
    request: impl tonic::IntoRequest<RequestMessage>,
) -> (Vec<String>, Result<(), tonic::Status>) {
    let mut stream = client.server_stream_rpc(request).await.unwrap().into_inner();
    let mut received = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(message)) => received.push(message.response_data),
            Ok(None) => return (received, Ok(())),
            Err(status) => return (received, Err(status)),
        }
    }
}

async fn count_zero_sends_the_original_ten_with_trailing_space(transport: Transport) {
    let server = TestServer::start_over(transport, &[]).await;
    let mut client = server.client().await;
    let (received, end) = collect(&mut client, request("People")).await;
    let expected: Vec<String> = (1..=10).map(|i| format!("Hello, People: server({i}) ")).collect();
    assert_eq!(received, expected);
    assert!(end.is_ok());
}

async fn count_and_interval_are_honoured(transport: Transport) {
    let server = TestServer::start_over(transport, &[]).await;
    let mut client = server.client().await;
    let started = tokio::time::Instant::now();
    let (received, end) = collect(&mut client, stream_request("x", 3, 50)).await;
    assert_eq!(received, ["Hello, x: server(1) ", "Hello, x: server(2) ", "Hello, x: server(3) "]);
    assert!(end.is_ok());
    // Two pauses of 50 ms between three responses.
    assert!(started.elapsed() >= Duration::from_millis(100), "{:?}", started.elapsed());
}

async fn count_above_the_limit_is_invalid_argument(transport: Transport) {
    let server = TestServer::start_over(transport, &["--max-stream-count", "100"]).await;
    let mut client = server.client().await;
    let status = client.server_stream_rpc(stream_request("x", 101, 0)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "count must be at most 100");
}

async fn count_at_the_limit_is_served_in_full(transport: Transport) {
    let server = TestServer::start_over(transport, &["--max-stream-count", "100"]).await;
    let mut client = server.client().await;
    let (received, end) = collect(&mut client, stream_request("x", 100, 0)).await;
    assert_eq!(received.len(), 100);
    assert_eq!(received[99], "Hello, x: server(100) ");
    assert!(end.is_ok());
}

async fn interval_above_sixty_seconds_is_invalid_argument(transport: Transport) {
    let server = TestServer::start_over(transport, &[]).await;
    let mut client = server.client().await;
    let status = client.server_stream_rpc(stream_request("x", 2, 60_001)).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "interval_ms must be at most 60000");
}

async fn dropping_the_stream_stops_the_producer(transport: Transport) {
    let server = TestServer::start_over(transport, &[]).await;
    let mut client = server.client().await;
    let mut stream = client.server_stream_rpc(stream_request("x", 1000, 1000)).await.unwrap().into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().response_data, "Hello, x: server(1) ");
    server.stats.wait_until(|s| s.streams_open == 1).await;

    drop(stream);
    let after = tokio::time::timeout(PROMPTLY, server.stats.wait_until(|s| s.streams_open == 0))
        .await
        .expect("the producer should stop while waiting out its interval");
    assert_eq!(after.cancelled, 1);
}

async fn a_deadline_ends_a_slow_stream_with_deadline_exceeded(transport: Transport) {
    let server = TestServer::start_over(transport, &[]).await;
    let mut client = server.client().await;
    let mut request = Request::new(stream_request("x", 10, 100));
    request.set_timeout(Duration::from_millis(250));
    let (received, end) = collect(&mut client, request).await;
    let status = end.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(status.message(), "deadline exceeded");
    // Sent at 0, 100 and 200 ms; the deadline falls before the fourth.
    assert_eq!(received.len(), 3);
    assert_eq!(server.stats.snapshot().deadline_exceeded, 1);
}

on_both_transports!(
    count_zero_sends_the_original_ten_with_trailing_space,
    count_and_interval_are_honoured,
    count_above_the_limit_is_invalid_argument,
    count_at_the_limit_is_served_in_full,
    interval_above_sixty_seconds_is_invalid_argument,
    dropping_the_stream_stops_the_producer,
    a_deadline_ends_a_slow_stream_with_deadline_exceeded,
);
