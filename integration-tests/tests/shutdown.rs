//! Graceful shutdown: in-flight calls get the grace, then the rest are ended.

use connect_proto::RequestMessage;
use integration_tests::{PROMPTLY, TestServer, Transport, on_both_transports};
use tonic::Code;

fn slow_stream(count: u32, interval_ms: u32) -> RequestMessage {
    RequestMessage { request_data: "x".into(), count, interval_ms }
}

async fn an_in_flight_stream_finishes_within_the_grace(transport: Transport) {
    let mut server = TestServer::start_over(transport, &["--shutdown-grace", "5s"]).await;
    let mut client = server.client().await;
    let mut stream = client.server_stream_rpc(slow_stream(5, 50)).await.unwrap().into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().response_data, "Hello, x: server(1) ");

    server.begin_shutdown();
    let mut received = 1;
    while let Some(message) = stream.message().await.unwrap() {
        received += 1;
        assert_eq!(message.response_data, format!("Hello, x: server({received}) "));
    }
    assert_eq!(received, 5);
    tokio::time::timeout(PROMPTLY, server.join()).await.expect("drained").unwrap();
}

async fn a_stream_outlasting_the_grace_ends_with_unavailable(transport: Transport) {
    let mut server = TestServer::start_over(transport, &["--shutdown-grace", "200ms"]).await;
    let mut client = server.client().await;
    let mut stream = client.server_stream_rpc(slow_stream(100, 1000)).await.unwrap().into_inner();
    assert_eq!(stream.message().await.unwrap().unwrap().response_data, "Hello, x: server(1) ");

    server.begin_shutdown();
    let status = stream.message().await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "server shutting down");
    tokio::time::timeout(PROMPTLY, server.join()).await.expect("stopped").unwrap();
    assert_eq!(server.stats.snapshot().streams_open, 0);
}

async fn no_new_connection_is_accepted_once_shutdown_starts(transport: Transport) {
    let mut server = TestServer::start_over(transport, &[]).await;
    server.begin_shutdown();
    tokio::time::timeout(PROMPTLY, server.join()).await.expect("stopped").unwrap();
    let connected = server.try_channel().await;
    assert!(connected.is_err(), "the listener should be closed");
}

async fn a_bidi_stream_outlasting_the_grace_ends_with_unavailable(transport: Transport) {
    let mut server = TestServer::start_over(transport, &["--shutdown-grace", "100ms"]).await;
    let mut client = server.client().await;
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    let mut replies =
        client.bidi_stream_rpc(tokio_stream::wrappers::ReceiverStream::new(rx)).await.unwrap().into_inner();
    tx.send(integration_tests::request("a")).await.unwrap();
    assert_eq!(replies.message().await.unwrap().unwrap().response_data, "Hello, a");

    server.begin_shutdown();
    let status = replies.message().await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    drop(tx);
    tokio::time::timeout(PROMPTLY, server.join()).await.expect("stopped").unwrap();
}

on_both_transports!(
    an_in_flight_stream_finishes_within_the_grace,
    a_stream_outlasting_the_grace_ends_with_unavailable,
    no_new_connection_is_accepted_once_shutdown_starts,
    a_bidi_stream_outlasting_the_grace_ends_with_unavailable,
);
