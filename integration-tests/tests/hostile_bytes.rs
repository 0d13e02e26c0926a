//! Bytes that are not HTTP/2 at all, on a bare TCP socket of a gRPC-only
//! port (`--protocols grpc`, HTTP/2 alone): the server answers with its
//! SETTINGS, sees no valid preface and closes the connection, and keeps
//! serving normal clients. (With the web protocols on, the port speaks
//! HTTP/1.1 too: `hostile_http1.rs`.)

use std::time::{Duration, Instant};

/// HTTP/2 only, as the port is with the web protocols off.
const GRPC_ONLY: [&str; 2] = ["--protocols", "grpc"];

use integration_tests::{
    PROMPTLY, TestServer, assert_still_serving,
    wire::frames::{Frame, PREFACE, RawConn, flags, frame_type},
};

/// Sends `bytes`, then expects the server's own SETTINGS frame and nothing else before it closes.
async fn expect_closed_after(server: &TestServer, bytes: &[u8]) -> Duration {
    let mut conn = RawConn::connect(server.addr).await;
    conn.write(bytes).await;
    let started = Instant::now();
    let frames = conn.expect_closed_within(PROMPTLY).await.expect("connection closed within PROMPTLY");
    assert_only_server_settings(&frames);
    started.elapsed()
}

fn assert_only_server_settings(frames: &[Frame]) {
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0].kind, frame_type::SETTINGS);
    assert_eq!(frames[0].flags, 0, "the server's own settings, not an ack");
}

#[tokio::test]
async fn http1_request_is_closed() {
    let server = TestServer::start_with_args(&GRPC_ONLY).await;
    expect_closed_after(
        &server,
        b"POST /ConnectService/UnaryRPC HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn tls_client_hello_on_plaintext_port_is_closed() {
    let server = TestServer::start_with_args(&GRPC_ONLY).await;
    // The start of a TLS 1.2/1.3 ClientHello record.
    let mut hello = vec![0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03];
    hello.extend(0..32u8);
    expect_closed_after(&server, &hello).await;
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn random_bytes_are_closed() {
    let server = TestServer::start_with_args(&GRPC_ONLY).await;
    // A fixed pseudo-random sequence, so a failure reproduces.
    let noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    expect_closed_after(&server, &noise).await;
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn half_sent_preface_is_closed_at_the_handshake_timeout() {
    let server = TestServer::start_with_args(&["--handshake-timeout", "300ms", "--protocols", "grpc"]).await;
    let elapsed = expect_closed_after(&server, &PREFACE[..10]).await;
    assert!(elapsed >= Duration::from_millis(250), "closed too early: {elapsed:?}");
    tokio::time::timeout(PROMPTLY, server.connections.wait_until_at_most(0))
        .await
        .expect("connection released");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn silent_connection_is_closed_at_the_handshake_timeout() {
    let server = TestServer::start_with_args(&["--handshake-timeout", "300ms", "--protocols", "grpc"]).await;
    let elapsed = expect_closed_after(&server, &[]).await;
    assert!(elapsed >= Duration::from_millis(250), "closed too early: {elapsed:?}");
}

#[tokio::test]
async fn idle_connection_after_the_preface_is_closed_at_the_idle_timeout() {
    let server = TestServer::start_with_args(&["--idle-timeout", "400ms"]).await;
    let mut conn = RawConn::open(server.addr).await;
    let started = Instant::now();
    let frames = conn.expect_closed_within(PROMPTLY).await.expect("closed within PROMPTLY");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(350), "closed too early: {elapsed:?}");
    // Its SETTINGS, the ack of ours and its connection window; then the close. The ack and the
    // window update race (the ack goes out when our SETTINGS is read), so their order is not asserted.
    let mut kinds = frames.iter().map(|f| (f.kind, f.flags)).collect::<Vec<_>>();
    assert_eq!(kinds.first(), Some(&(frame_type::SETTINGS, 0)), "{frames:?}");
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [(frame_type::SETTINGS, 0), (frame_type::SETTINGS, flags::ACK), (frame_type::WINDOW_UPDATE, 0)]
    );
    tokio::time::timeout(PROMPTLY, server.connections.wait_until_at_most(0))
        .await
        .expect("connection released");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn connection_with_a_call_in_flight_is_not_idle() {
    let server = TestServer::start_with_args(&["--idle-timeout", "300ms"]).await;
    let mut client = server.client().await;
    // One stream, 6 messages 150 ms apart: the connection is busy for 750 ms, > 2 idle timeouts.
    let mut stream = client
        .server_stream_rpc(connect_proto::RequestMessage {
            request_data: "busy".into(),
            count: 6,
            interval_ms: 150,
        })
        .await
        .expect("stream starts")
        .into_inner();
    let mut received = 0;
    while let Some(message) = stream.message().await.expect("no error mid-stream") {
        received += 1;
        assert_eq!(message.response_data, format!("Hello, busy: server({received}) "));
    }
    assert_eq!(received, 6);
}
