//! A client that never reads its server stream: flow control bounds what the
//! server produces, and the deadline ends the call.

use connect_proto::{RequestMessage, ResponseMessage};
use http::HeaderValue;
use integration_tests::{
    PROMPTLY, TestServer, assert_still_serving,
    wire::{
        client::{self, grpc_request, send_keep_open},
        grpc::grpc_message,
    },
};
use prost::Message;
use tonic::Code;

/// Far more than flow control lets through without reading.
const ASKED: u32 = 1_000_000;

#[tokio::test]
async fn never_read_stream_is_bounded_and_ended_by_its_deadline() {
    let server = TestServer::start().await;
    let mut client = client::h2_connect(server.addr).await;
    let mut request = grpc_request("/ConnectService/ServerStreamRPC");
    request.headers_mut().insert("grpc-timeout", HeaderValue::from_static("500m"));
    let body = grpc_message(
        &RequestMessage { request_data: "slow".into(), count: ASKED, interval_ms: 0 }.encode_to_vec(),
    );
    let (response, _send) = send_keep_open(&mut client, request, body, true).await;
    // Not reading: the producer fills the window and the channel, then must stop at the deadline.
    // (Open first: the call is counted a moment before its stream opens, on the server's thread.)
    tokio::time::timeout(PROMPTLY, server.stats.wait_until(|s| s.streams_open == 1))
        .await
        .expect("the stream opened");
    let snapshot = tokio::time::timeout(
        PROMPTLY,
        server.stats.wait_until(|s| s.streams_open == 0 && s.server_stream == 1),
    )
    .await
    .expect("the producer ended at the deadline although nobody reads");
    // The call is counted when its response ends, which waits for the reader.
    assert_eq!(snapshot.deadline_exceeded, 0);
    // Now read everything: the messages that were produced, then a non-OK status with their count.
    let response = tokio::time::timeout(PROMPTLY, client::collect(response)).await.expect("the rest arrives");
    let mut received = 0u64;
    let mut body = &response.body[..];
    while !body.is_empty() {
        let len = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
        let message = ResponseMessage::decode(&body[5..5 + len]).expect("whole messages");
        received += 1;
        assert_eq!(message.response_data, format!("Hello, slow: server({received}) "));
        body = &body[5 + len..];
    }
    println!("slow reader: {received} of {ASKED} messages produced before the deadline");
    assert_eq!(response.grpc_status(), Some(Code::DeadlineExceeded as i32));
    let counted: u64 =
        response.trailers.as_ref().unwrap()["x-message-count"].to_str().unwrap().parse().unwrap();
    assert_eq!(counted, received, "the trailer counts exactly what arrived");
    tokio::time::timeout(PROMPTLY, server.stats.wait_until(|s| s.deadline_exceeded == 1))
        .await
        .expect("counted as deadline exceeded once the response ended");
    // Bounded by flow control (64 KiB stream window) plus the 64-message channel, not by the million asked.
    assert!(received < 5_000, "produced {received} messages for a reader that never read");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn never_read_stream_without_deadline_is_ended_by_shutdown() {
    let mut server = TestServer::start_with_args(&["--shutdown-grace", "300ms"]).await;
    let mut client = client::h2_connect(server.addr).await;
    let body = grpc_message(
        &RequestMessage { request_data: "slow".into(), count: ASKED, interval_ms: 0 }.encode_to_vec(),
    );
    let (response, _send) =
        send_keep_open(&mut client, grpc_request("/ConnectService/ServerStreamRPC"), body, true).await;
    tokio::time::timeout(PROMPTLY, server.stats.wait_until(|s| s.streams_open == 1))
        .await
        .expect("stream open");
    server.begin_shutdown();
    // The grace passes, the producer is ended although its channel is full, and the server stops.
    tokio::time::timeout(PROMPTLY, server.stats.wait_until(|s| s.streams_open == 0))
        .await
        .expect("the producer ended by the shutdown");
    tokio::time::timeout(PROMPTLY, server.join()).await.expect("server stops").expect("clean stop");
    drop(response);
}
