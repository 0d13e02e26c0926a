//! Clients that vanish mid-stream (TCP reset): every producer stops and the
//! open-stream count returns to 0 within a second.

use std::time::Duration;

use connect_proto::RequestMessage;
use integration_tests::{
    PROMPTLY, TestServer, assert_still_serving, scale,
    wire::{
        client::{AbortableH2, grpc_request, send_keep_open},
        grpc::grpc_message,
    },
};
use prost::Message;

/// How long the server may take to notice that the clients are gone.
const NOTICE_WITHIN: Duration = Duration::from_secs(1);
/// Streams per connection, below the concurrent-stream limit.
const STREAMS_PER_CONNECTION: usize = 100;

#[tokio::test]
async fn streams_of_vanished_clients_stop_within_a_second() {
    let server = TestServer::start().await;
    let streams = scale(200, 1_000);
    let body = grpc_message(
        &RequestMessage { request_data: "gone".into(), count: 1_000_000, interval_ms: 10 }.encode_to_vec(),
    );
    let mut connections = Vec::new();
    let mut pending = Vec::new();
    for _ in 0..streams.div_ceil(STREAMS_PER_CONNECTION) {
        let mut conn = AbortableH2::connect(server.addr).await;
        for _ in 0..STREAMS_PER_CONNECTION.min(streams - pending.len()) {
            let (response, send) = send_keep_open(
                &mut conn.client,
                grpc_request("/ConnectService/ServerStreamRPC"),
                body.clone(),
                true,
            )
            .await;
            pending.push((response, send));
        }
        connections.push(conn);
    }
    tokio::time::timeout(PROMPTLY, server.stats.wait_until(|s| s.streams_open == streams as i64))
        .await
        .expect("all streams open");
    for conn in connections {
        conn.vanish();
    }
    drop(pending);
    let snapshot = tokio::time::timeout(NOTICE_WITHIN, server.stats.wait_until(|s| s.streams_open == 0))
        .await
        .expect("every producer stopped within a second");
    assert_eq!(snapshot.server_stream, streams as u64);
    assert_eq!(snapshot.cancelled, streams as u64, "each counted as cancelled");
    assert_eq!(snapshot.deadline_exceeded, 0);
    tokio::time::timeout(PROMPTLY, server.connections.wait_until_at_most(0))
        .await
        .expect("connections released");
    assert_still_serving(&server).await;
}
