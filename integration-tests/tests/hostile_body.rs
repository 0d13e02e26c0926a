//! Hostile request bodies sent over raw HTTP/2: each gets a precise gRPC
//! status, and a normal client on another connection is served afterwards.

use std::time::Duration;

use bytes::Bytes;
use integration_tests::{
    TestServer, assert_still_serving,
    wire::{
        UNARY_PATH, client,
        grpc::{grpc_frame, grpc_message},
    },
};
use prost::Message;
use tonic::Code;

const INTERNAL: i32 = Code::Internal as i32;

async fn unary_with_body(server: &TestServer, body: Bytes) -> client::RawResponse {
    let mut client = client::h2_connect(server.addr).await;
    client::send(&mut client, client::grpc_request(UNARY_PATH), body).await
}

fn encoded(data: &str) -> Vec<u8> {
    integration_tests::request(data).encode_to_vec()
}

#[tokio::test]
async fn malformed_protobuf_is_internal() {
    let server = TestServer::start().await;
    // Field 1 declared length-delimited with a 10-byte varint length that never ends.
    let response = unary_with_body(&server, grpc_message(&[0x0a, 0xff, 0xff, 0xff, 0xff])).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.grpc_status(), Some(INTERNAL));
    assert_eq!(
        response.grpc_message().as_deref(),
        Some("failed to decode Protobuf message: RequestMessage.request_data: invalid varint")
    );
    assert_eq!(server.stats.snapshot().unary, 0, "the handler must not run");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn invalid_utf8_string_is_internal() {
    let server = TestServer::start().await;
    // request_data (field 1) = the two bytes C3 28: not UTF-8.
    let response = unary_with_body(&server, grpc_message(&[0x0a, 0x02, 0xc3, 0x28])).await;
    assert_eq!(response.grpc_status(), Some(INTERNAL));
    assert_eq!(
        response.grpc_message().as_deref(),
        Some(
            "failed to decode Protobuf message: RequestMessage.request_data: invalid string value: data is not UTF-8 encoded"
        )
    );
    assert_eq!(server.stats.snapshot().unary, 0);
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn length_prefix_shorter_than_the_message_is_internal() {
    let server = TestServer::start().await;
    let payload = encoded("People");
    // Claims 2 bytes: the decoder sees field 1 announcing 6 bytes it does not have.
    let response = unary_with_body(&server, grpc_frame(false, 2, &payload)).await;
    assert_eq!(response.grpc_status(), Some(INTERNAL));
    assert_eq!(
        response.grpc_message().as_deref(),
        Some("failed to decode Protobuf message: RequestMessage.request_data: buffer underflow")
    );
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn length_prefix_longer_than_the_body_is_internal() {
    let server = TestServer::start().await;
    let payload = encoded("People");
    // Claims 100 bytes, then the stream ends after 8.
    let response = unary_with_body(&server, grpc_frame(false, 100, &payload)).await;
    assert_eq!(response.grpc_status(), Some(INTERNAL));
    assert_eq!(response.grpc_message().as_deref(), Some("Unexpected EOF decoding stream."));
    assert_eq!(server.stats.snapshot().unary, 0);
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn compressed_flag_without_grpc_encoding_is_internal() {
    let server = TestServer::start().await;
    let payload = encoded("People");
    let response = unary_with_body(&server, grpc_frame(true, payload.len() as u32, &payload)).await;
    assert_eq!(response.grpc_status(), Some(INTERNAL));
    assert_eq!(
        response.grpc_message().as_deref(),
        Some("protocol error: received message with compressed-flag but no grpc-encoding was specified")
    );
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn unknown_grpc_encoding_is_unimplemented() {
    let server = TestServer::start().await;
    let mut client = client::h2_connect(server.addr).await;
    let mut request = client::grpc_request(UNARY_PATH);
    request.headers_mut().insert("grpc-encoding", http::HeaderValue::from_static("snappy-xyz"));
    let payload = encoded("People");
    let response = client::send(&mut client, request, grpc_frame(true, payload.len() as u32, &payload)).await;
    assert_eq!(response.grpc_status(), Some(Code::Unimplemented as i32));
    assert_eq!(
        response.grpc_message().as_deref(),
        Some("Content is compressed with `snappy-xyz` which isn't supported")
    );
    assert_eq!(
        response.headers.get("grpc-accept-encoding").map(|v| v.to_str().unwrap()),
        Some("gzip,zstd,identity"),
        "the server names what it does accept"
    );
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn oversize_message_is_refused_before_its_body_arrives() {
    let server = TestServer::start().await;
    let mut client = client::h2_connect(server.addr).await;
    // Announce 5 MiB but send only the 5-byte prefix and keep the stream open:
    // an answer now proves the server did not wait to buffer the body.
    let (response, _send) = client::send_keep_open(
        &mut client,
        client::grpc_request(UNARY_PATH),
        grpc_frame(false, 5 * 1024 * 1024, &[]),
        false,
    )
    .await;
    let response = tokio::time::timeout(integration_tests::PROMPTLY, client::collect(response))
        .await
        .expect("answered without the body");
    assert_eq!(response.grpc_status(), Some(Code::OutOfRange as i32));
    assert_eq!(
        response.grpc_message().as_deref(),
        Some("Error, decoded message length too large: found 5242880 bytes, the limit is: 4194304 bytes")
    );
    assert_eq!(server.stats.snapshot().unary, 0);
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn well_formed_raw_request_is_answered() {
    // The control case: the raw path itself works, so the failures above are about their input.
    let server = TestServer::start().await;
    let response = unary_with_body(&server, grpc_message(&encoded("raw"))).await;
    assert_eq!(response.grpc_status(), Some(0));
    let reply = connect_proto::ResponseMessage::decode(&response.body[5..]).expect("decodable reply");
    assert_eq!(reply.response_data, "Hello, raw");
}

#[tokio::test]
async fn a_message_that_stops_arriving_ends_at_the_body_read_timeout() {
    let server = TestServer::start_with_args(&["--body-read-timeout", "300ms"]).await;
    let whole = grpc_message(&encoded("stalled"));
    // The prefix and part of the message; the rest never comes, the stream stays open.
    let part = whole.slice(..whole.len() - 3);
    let started = std::time::Instant::now();
    let response = client::call(server.addr, client::grpc_request(UNARY_PATH), part, false).await;
    let elapsed = started.elapsed();
    assert_eq!(response.grpc_status(), Some(Code::DeadlineExceeded as i32));
    assert_eq!(
        response.grpc_message().as_deref(),
        Some("the request body stalled: no bytes for 300 ms (--body-read-timeout)")
    );
    assert!(elapsed >= Duration::from_millis(250), "ended too early: {elapsed:?}");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn a_stream_may_pause_between_whole_messages() {
    use futures::StreamExt as _;
    let server = TestServer::start_with_args(&["--body-read-timeout", "100ms"]).await;
    let mut client = server.client().await;
    // Three whole messages, each after a pause three times the read timeout.
    let paused = futures::stream::iter(["a", "b", "c"]).then(|name| async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        integration_tests::request(name)
    });
    let answer = client.client_stream_rpc(paused).await.expect("not ended by the read timeout");
    assert_eq!(answer.into_inner().response_data, "Hello, a, b, c");
}

#[tokio::test]
async fn large_messages_in_pieces_share_one_budget() {
    let server = TestServer::start_with_args(&["--max-pending-message-bytes", "200000"]).await;
    let first = grpc_message(&encoded(&"a".repeat(150_000)));
    let second = grpc_message(&encoded(&"b".repeat(100_000)));
    // The first message's prefix and a piece of it: 150 kB of the budget held.
    let mut holder = client::h2_connect(server.addr).await;
    let (held, mut rest) =
        client::send_keep_open(&mut holder, client::grpc_request(UNARY_PATH), first.slice(..1_000), false)
            .await;
    // The second does not fit beside it: its call ends at once, naming the budget.
    let refused =
        client::call(server.addr, client::grpc_request(UNARY_PATH), second.slice(..1_000), false).await;
    assert_eq!(refused.grpc_status(), Some(Code::ResourceExhausted as i32));
    let expected = format!(
        "the server holds its budget of bytes for messages being received (--max-pending-message-bytes) \
         and cannot take this one of {} bytes; retry later",
        second.len() - 5
    );
    assert_eq!(refused.grpc_message().as_deref(), Some(expected.as_str()));
    // The first completes as usual, and gives its bytes back.
    rest.reserve_capacity(first.len() - 1_000);
    rest.send_data(first.slice(1_000..), true).unwrap();
    let answer = tokio::time::timeout(integration_tests::PROMPTLY, client::collect(held)).await.unwrap();
    assert_eq!(answer.grpc_status(), Some(0));
    let again = unary_with_body(&server, second).await;
    assert_eq!(again.grpc_status(), Some(0));
}

/// A Connect unary request (`application/proto`) to the unary method, declaring `len` bytes.
fn connect_unary_request(len: usize) -> http::Request<()> {
    http::Request::post(format!("http://localhost{UNARY_PATH}"))
        .header("content-type", "application/proto")
        .header("content-length", len)
        .body(())
        .expect("valid request")
}

#[tokio::test]
async fn a_connect_unary_body_larger_than_the_budget_is_refused_with_its_first_bytes() {
    let server = TestServer::start_with_args(&["--max-pending-message-bytes", "100000"]).await;
    let body = Bytes::from(encoded(&"a".repeat(120_000)));
    // A fifth of the body, the stream left open: the answer comes before the rest is sent.
    let refused =
        client::call(server.addr, connect_unary_request(body.len()), body.slice(..body.len() / 5), false)
            .await;
    assert_eq!(refused.status, 429);
    let error: serde_json::Value = serde_json::from_slice(&refused.body).expect("a JSON error");
    let message = format!(
        "the server holds its budget of bytes for messages being received (--max-pending-message-bytes) \
         and cannot take this one of {} bytes; retry later",
        body.len()
    );
    assert_eq!(error, serde_json::json!({ "code": "resource_exhausted", "message": message }));
    assert_eq!(server.stats.snapshot().unary, 0, "the handler must not run");
    // One that fits is served, and its bytes given back: the same again is served too.
    let fits = Bytes::from(encoded(&"b".repeat(90_000)));
    for _ in 0..2 {
        let answer = client::call(server.addr, connect_unary_request(fits.len()), fits.clone(), true).await;
        assert_eq!(answer.status, 200);
        let reply = connect_proto::ResponseMessage::decode(&answer.body[..]).expect("decodable reply");
        assert_eq!(reply.response_data.len(), "Hello, ".len() + 90_000);
    }
}
