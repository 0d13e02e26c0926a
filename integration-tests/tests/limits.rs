//! Every limit, hit once, with the status or HTTP/2 frame it produces.

use std::time::{Duration, Instant};

use connect_proto::RequestMessage;
use integration_tests::{
    TestServer, request,
    wire::{
        UNARY_PATH,
        frames::{RawConn, error_code, frame_type, grpc_headers_frame, rst_stream},
    },
};
use prost::Message as _;
use tonic::Code;

#[tokio::test]
async fn oversized_request_is_out_of_range_naming_the_limit() {
    let server = TestServer::start_with_args(&["--max-recv-message-size", "1024"]).await;
    let mut client = server.client().await;
    let big = request(&"x".repeat(2000));
    let status = client.unary_rpc(big.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange);
    assert_eq!(
        status.message(),
        format!(
            "Error, decoded message length too large: found {} bytes, the limit is: 1024 bytes",
            big.encoded_len()
        )
    );
    // The connection and the server stay usable.
    let ok = client.unary_rpc(request("small")).await.unwrap().into_inner();
    assert_eq!(ok.response_data, "Hello, small");
}

#[tokio::test]
async fn oversized_response_is_out_of_range_naming_the_limit() {
    let server = TestServer::start_with_args(&["--max-send-message-size", "64"]).await;
    let mut client = server.client().await;
    let data = "y".repeat(100);
    let status = client.unary_rpc(request(&data)).await.unwrap_err();
    let response_len = connect_server::service::hello(&data).encoded_len();
    assert_eq!(status.code(), Code::OutOfRange);
    assert_eq!(
        status.message(),
        format!(
            "Error, encoded message length too large: found {response_len} bytes, the limit is: 64 bytes"
        )
    );
    let ok = client.unary_rpc(request("short")).await.unwrap().into_inner();
    assert_eq!(ok.response_data, "Hello, short");
}

#[tokio::test]
async fn streams_beyond_max_concurrent_streams_are_refused() {
    let server = TestServer::start_with_args(&["--max-concurrent-streams", "1"]).await;
    let (mut conn, _) = RawConn::handshake(server.addr).await;
    // Stream 1 stays open (no END_STREAM), so stream 3 is one too many.
    let mut frames = grpc_headers_frame(UNARY_PATH, 1, false);
    frames.extend(grpc_headers_frame(UNARY_PATH, 3, true));
    conn.write(&frames).await;
    let reset = conn.next_of(&[frame_type::RST_STREAM, frame_type::GOAWAY]).await.expect("a reset");
    assert_eq!(
        (reset.kind, reset.stream_id, reset.error_code()),
        (frame_type::RST_STREAM, 3, error_code::REFUSED_STREAM)
    );
}

#[tokio::test]
async fn too_many_local_error_resets_close_the_connection() {
    let server = TestServer::start_with_args(&[
        "--max-concurrent-streams",
        "1",
        "--max-local-error-reset-streams",
        "2",
    ])
    .await;
    let (mut conn, _) = RawConn::handshake(server.addr).await;
    // Each refused stream is a reset the server makes because of the client; the third is one too many.
    let mut frames = grpc_headers_frame(UNARY_PATH, 1, false);
    for id in [3, 5, 7] {
        frames.extend(grpc_headers_frame(UNARY_PATH, id, true));
    }
    conn.write(&frames).await;
    for id in [3, 5] {
        let reset = conn.next_of(&[frame_type::RST_STREAM, frame_type::GOAWAY]).await.expect("a reset");
        assert_eq!(
            (reset.kind, reset.stream_id, reset.error_code()),
            (frame_type::RST_STREAM, id, error_code::REFUSED_STREAM)
        );
    }
    let goaway = conn.next_of(&[frame_type::RST_STREAM, frame_type::GOAWAY]).await.expect("a GOAWAY");
    assert_eq!(
        (goaway.kind, goaway.error_code(), goaway.debug_data().as_str()),
        (frame_type::GOAWAY, error_code::ENHANCE_YOUR_CALM, "too_many_internal_resets")
    );
}

#[tokio::test]
async fn too_many_pending_accept_resets_close_the_connection() {
    let server = TestServer::start_with_args(&["--max-pending-accept-reset-streams", "2"]).await;
    let (mut conn, _) = RawConn::handshake(server.addr).await;
    // Open-and-cancel in one burst (the "rapid reset" pattern): streams reset before the server accepts them.
    let mut frames = Vec::new();
    for id in (1..40).step_by(2) {
        frames.extend(grpc_headers_frame(UNARY_PATH, id, true));
        frames.extend(rst_stream(id, error_code::CANCEL));
    }
    conn.write(&frames).await;
    let goaway = conn.next_of(&[frame_type::GOAWAY]).await.expect("a GOAWAY");
    assert_eq!(
        (goaway.error_code(), goaway.debug_data().as_str()),
        (error_code::ENHANCE_YOUR_CALM, "too_many_resets")
    );
}

#[tokio::test]
async fn unanswered_keepalive_ping_closes_the_connection() {
    let server =
        TestServer::start_with_args(&["--keepalive-interval", "100ms", "--keepalive-timeout", "100ms"]).await;
    let (mut conn, _) = RawConn::handshake(server.addr).await;
    let ping = conn.next_of(&[frame_type::PING]).await.expect("a keepalive PING");
    assert_eq!(ping.flags, 0, "a ping, not an ack");
    // Never answered: the server gives up on the connection.
    assert_eq!(conn.next_of(&[]).await, None, "connection closed");
}

#[tokio::test]
async fn connections_past_max_age_get_goaway_then_close_after_the_grace() {
    let server = TestServer::start_with_args(&[
        "--max-connection-age",
        "200ms",
        "--max-connection-age-grace",
        "300ms",
    ])
    .await;
    let connected = Instant::now();
    let (mut conn, _) = RawConn::handshake(server.addr).await;
    // A call that never finishes keeps the connection open past its age, until the grace ends it.
    conn.write(&grpc_headers_frame(UNARY_PATH, 1, false)).await;
    let goaway = conn.next_of(&[frame_type::GOAWAY]).await.expect("a GOAWAY");
    assert_eq!(goaway.error_code(), error_code::NO_ERROR);
    assert!(connected.elapsed() >= Duration::from_millis(200), "GOAWAY at the age, not before");
    let after_goaway = conn.next_of(&[frame_type::GOAWAY]).await;
    assert_eq!(after_goaway.map(|frame| frame.error_code()), None, "closed after the grace");
    assert!(connected.elapsed() >= Duration::from_millis(500), "open until age + grace");
}

#[tokio::test]
async fn stream_count_and_interval_caps() {
    let server = TestServer::start_with_args(&["--max-stream-count", "5", "--max-interval-ms", "100"]).await;
    let mut client = server.client().await;
    let ask = |count, interval_ms| RequestMessage { request_data: "x".into(), count, interval_ms };
    let status = client.server_stream_rpc(ask(6, 0)).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::InvalidArgument, "count must be at most 5"));
    let status = client.server_stream_rpc(ask(1, 101)).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::InvalidArgument, "interval_ms must be at most 100"));
    let mut stream = client.server_stream_rpc(ask(5, 0)).await.unwrap().into_inner();
    let mut received = 0;
    while let Some(_message) =
        tokio::time::timeout(Duration::from_secs(5), stream.message()).await.unwrap().unwrap()
    {
        received += 1;
    }
    assert_eq!(received, 5);
}
