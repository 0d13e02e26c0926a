//! Floods on one HTTP/2 connection, with hand-made frames: rapid reset,
//! streams beyond the concurrent-stream limit, PING floods (with and without
//! the keepalive policy) and SETTINGS floods.
//! Counts are small here; `scripts/floods` runs them at full scale.

use std::time::Duration;

use integration_tests::{
    TestServer, assert_still_serving, scale,
    wire::{
        UNARY_PATH,
        frames::{RawConn, encode_frame, error_code, flags, frame_type, grpc_headers_frame, rst_stream},
    },
};

/// SETTINGS_MAX_CONCURRENT_STREAMS.
const MAX_CONCURRENT_STREAMS: u16 = 0x3;
/// How much the client batches before each write.
const BATCH_BYTES: usize = 64 * 1024;

/// Writes `frames` in batches; returns how many were written before the server closed.
async fn write_all_frames(conn: &mut RawConn, frames: impl Iterator<Item = Vec<u8>>) -> usize {
    let mut batch = Vec::new();
    let mut pending = 0;
    let mut written = 0;
    for frame in frames {
        batch.extend(frame);
        pending += 1;
        if batch.len() >= BATCH_BYTES {
            if !conn.try_write(&batch).await {
                return written;
            }
            written += pending;
            pending = 0;
            batch.clear();
        }
    }
    if conn.try_write(&batch).await {
        written += pending;
    }
    written
}

#[tokio::test]
async fn rapid_reset_gets_goaway_enhance_your_calm() {
    let server = TestServer::start().await;
    let (mut conn, _) = RawConn::handshake(server.addr).await;
    let pairs = scale(2_000, 10_000);
    let frames = (0..pairs as u32).flat_map(|i| {
        let id = 2 * i + 1;
        [grpc_headers_frame(UNARY_PATH, id, false), rst_stream(id, error_code::CANCEL)]
    });
    write_all_frames(&mut conn, frames).await;
    let frames =
        conn.expect_closed_within(integration_tests::PROMPTLY).await.expect("server closes the abuser");
    let goaways: Vec<_> = frames.iter().filter(|f| f.kind == frame_type::GOAWAY).collect();
    assert_eq!(goaways.len(), 1, "{frames:?}");
    assert_eq!(goaways[0].error_code(), error_code::ENHANCE_YOUR_CALM);
    // h2 allows 20 streams reset before the server accepts them; the GOAWAY names
    // the last stream it processed, far below the ones the abuser sent.
    let last_stream = u32::from_be_bytes(goaways[0].payload[..4].try_into().unwrap());
    assert!(last_stream < 200, "GOAWAY came late: last stream {last_stream}");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn streams_beyond_the_limit_are_refused() {
    let server = TestServer::start().await;
    let (mut conn, settings) = RawConn::handshake(server.addr).await;
    let limit = settings
        .iter()
        .find(|(id, _)| *id == MAX_CONCURRENT_STREAMS)
        .map(|(_, value)| *value)
        .expect("the server announces a concurrent-stream limit");
    let extra = 10u32;
    // Unary calls whose body never comes: each stream stays open in the handler.
    let frames = (0..limit + extra).map(|i| grpc_headers_frame(UNARY_PATH, 2 * i + 1, false));
    assert_eq!(write_all_frames(&mut conn, frames).await, (limit + extra) as usize);
    let mut refused = Vec::new();
    while refused.len() < extra as usize {
        let frame = conn
            .read_until(|f| f.kind == frame_type::RST_STREAM || f.kind == frame_type::GOAWAY)
            .await
            .expect("connection stays open");
        assert_eq!(frame.kind, frame_type::RST_STREAM, "{frame:?}");
        assert_eq!(frame.error_code(), error_code::REFUSED_STREAM);
        refused.push(frame.stream_id);
    }
    // Exactly the streams past the limit, nothing queued.
    let expected: Vec<u32> = (limit..limit + extra).map(|i| 2 * i + 1).collect();
    assert_eq!(refused, expected);
    // No further resets: the streams within the limit are open and waiting.
    assert!(conn.read_frame_within(Duration::from_millis(200)).await.is_err(), "unexpected frame");
    assert_still_serving(&server).await;
}

/// Floods `frame` `count` times, then reads the acknowledgements; returns how many came back.
async fn flood_and_count_acks(server: &TestServer, frame: Vec<u8>, kind: u8, count: usize) -> usize {
    let (mut conn, _) = RawConn::handshake(server.addr).await;
    let written = write_all_frames(&mut conn, std::iter::repeat_n(frame, count)).await;
    assert_eq!(written, count, "the server closed the connection mid-flood");
    let mut acks = 0;
    while acks < count {
        let frame = conn.read_frame().await.expect("connection stays open");
        if frame.kind == kind && frame.flags & flags::ACK != 0 {
            acks += 1;
        }
    }
    // Nothing beyond one ack per frame.
    while let Ok(Some(frame)) = conn.read_frame_within(Duration::from_millis(200)).await {
        assert!(frame.kind != kind, "an extra ack: {frame:?}");
    }
    acks
}

/// With the keepalive policy off (`--keepalive-min-interval 0`), h2's own bound:
/// every PING answered, at most one ACK pending.
#[tokio::test]
async fn ping_flood_is_answered_one_for_one_and_service_continues() {
    let server = TestServer::start_with_args(&["--keepalive-min-interval", "0"]).await;
    let count = scale(20_000, 100_000);
    let ping = encode_frame(frame_type::PING, 0, 0, &[7; 8]);
    assert_eq!(flood_and_count_acks(&server, ping, frame_type::PING, count).await, count);
    assert_still_serving(&server).await;
}

/// With the default keepalive policy a flood is over at its fourth PING: the
/// first is free, the next three are strikes.
#[tokio::test]
async fn ping_flood_gets_goaway_too_many_pings_and_service_continues() {
    let server = TestServer::start().await;
    let (mut conn, _) = RawConn::handshake(server.addr).await;
    let ping = encode_frame(frame_type::PING, 0, 0, &[7; 8]);
    write_all_frames(&mut conn, std::iter::repeat_n(ping, scale(20_000, 100_000))).await;
    let frames =
        conn.expect_closed_within(integration_tests::PROMPTLY).await.expect("server closes the abuser");
    let goaways: Vec<_> = frames.iter().filter(|f| f.kind == frame_type::GOAWAY).collect();
    assert_eq!(goaways.len(), 1, "{frames:?}");
    assert_eq!(goaways[0].error_code(), error_code::ENHANCE_YOUR_CALM);
    assert_eq!(goaways[0].debug_data(), "too_many_pings");
    let acks = frames.iter().filter(|f| f.kind == frame_type::PING).count();
    // Only PINGs read before the fourth can have been answered.
    assert!(acks <= 3, "{acks} ACKs: the flood was answered past its third PING");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn settings_flood_is_answered_one_for_one_and_service_continues() {
    let server = TestServer::start().await;
    let count = scale(20_000, 100_000);
    // SETTINGS_INITIAL_WINDOW_SIZE = 65536, again and again.
    let settings = encode_frame(frame_type::SETTINGS, 0, 0, &[0, 4, 0, 1, 0, 0]);
    assert_eq!(flood_and_count_acks(&server, settings, frame_type::SETTINGS, count).await, count);
    assert_still_serving(&server).await;
}
