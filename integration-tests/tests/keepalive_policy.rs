//! Keepalive enforcement (grpc-go's `EnforcementPolicy`), with hand-made
//! PINGs: a client pinging faster than `--keepalive-min-interval` (without
//! calls: than 2 hours, unless `--keepalive-permit-without-calls`) gets a
//! strike per PING, and the third strike gets `GOAWAY(ENHANCE_YOUR_CALM,
//! "too_many_pings")` and a closed connection. The first PING of a
//! connection, and the first after the server sent HEADERS or DATA, is never
//! a strike, so the fourth PING in a row is the one that is refused.

use std::{sync::Arc, time::Duration};

use clap::Parser as _;
use connect_client::{Cli, ClientError};
use integration_tests::{
    PROMPTLY, TestServer, assert_still_serving,
    certs::TestCerts,
    request,
    wire::{
        UNARY_PATH,
        frames::{Frame, RawConn, encode_frame, error_code, flags, frame_type, grpc_headers_frame},
        grpc::request_message,
    },
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{TlsConnector, rustls::pki_types::ServerName};
use tonic::Code;

/// The path of `BidiStreamRPC`: a call the server answers with HEADERS at once
/// and then leaves open while the client sends nothing.
const BIDI_PATH: &str = "/ConnectService/BidiStreamRPC";

fn ping(n: u8) -> Vec<u8> {
    encode_frame(frame_type::PING, 0, 0, &[n; 8])
}

fn is_ack_of(frame: &Frame, n: u8) -> bool {
    frame.kind == frame_type::PING && frame.flags & flags::ACK != 0 && frame.payload == [n; 8]
}

/// Sends PING `n` and reads up to its ACK; panics on a GOAWAY or a close before it.
async fn ping_answered<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut RawConn<S>, n: u8) {
    conn.write(&ping(n)).await;
    let ack = conn
        .read_until(|frame| {
            assert_ne!(frame.kind, frame_type::GOAWAY, "PING {n} struck out: {frame:?}");
            is_ack_of(frame, n)
        })
        .await;
    assert!(ack.is_some(), "the connection closed before the ACK of PING {n}");
}

/// Reads until the server closes; asserts it sent exactly one GOAWAY, the
/// policy's, naming `last_stream`.
async fn assert_too_many_pings<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut RawConn<S>, last_stream: u32) {
    let frames = conn.expect_closed_within(PROMPTLY).await.expect("the server closes the connection");
    let goaways: Vec<_> = frames.iter().filter(|frame| frame.kind == frame_type::GOAWAY).collect();
    assert_eq!(goaways.len(), 1, "{frames:?}");
    assert_eq!(goaways[0].error_code(), error_code::ENHANCE_YOUR_CALM);
    assert_eq!(goaways[0].debug_data(), "too_many_pings");
    assert_eq!(u32::from_be_bytes(goaways[0].payload[..4].try_into().unwrap()), last_stream);
}

/// Opens a bidi call on stream 1 and waits for the server's HEADERS: a call in flight.
async fn open_call(conn: &mut RawConn) {
    conn.write(&grpc_headers_frame(BIDI_PATH, 1, false)).await;
    let headers = conn.next_of(&[frame_type::HEADERS]).await.expect("response HEADERS");
    assert_eq!(headers.stream_id, 1);
}

#[tokio::test]
async fn fast_pings_with_a_call_in_flight_get_goaway_too_many_pings() {
    let server = TestServer::start_with_args(&["--keepalive-min-interval", "1s"]).await;
    let (mut conn, _) = RawConn::handshake(server.addr).await;
    open_call(&mut conn).await;
    // Three at once: the first is free (the first after the server's HEADERS),
    // the next two are strikes one and two, all answered.
    conn.write(&[ping(1), ping(2), ping(3)].concat()).await;
    for n in 1..=3 {
        conn.read_until(|frame| {
            assert_ne!(frame.kind, frame_type::GOAWAY, "struck out at two strikes: {frame:?}");
            is_ack_of(frame, n)
        })
        .await
        .expect("an ACK");
    }
    conn.write(&ping(4)).await;
    assert_too_many_pings(&mut conn, 1).await;
    assert_still_serving(&server).await;
}

/// Sends PINGs `1..=count`, each answered, `spacing` apart. The spacing is
/// what is under test: the server reads each PING at least `spacing` after it
/// read the one before (which it did before answering it).
async fn spaced_pings(conn: &mut RawConn, count: u8, spacing: Duration) {
    for n in 1..=count {
        ping_answered(conn, n).await;
        tokio::time::sleep(spacing).await;
    }
}

/// Four PINGs at once after `spaced_pings(.., 6, ..)`: the first of them is
/// spaced, the other three are the strikes that end the connection, so the
/// six before were none.
async fn four_fast_pings_strike_out(conn: &mut RawConn, last_stream: u32) {
    conn.write(&[ping(7), ping(8), ping(9), ping(10)].concat()).await;
    assert_too_many_pings(conn, last_stream).await;
}

#[tokio::test]
async fn pings_spaced_beyond_the_interval_get_only_acks() {
    let server = TestServer::start_with_args(&["--keepalive-min-interval", "200ms"]).await;
    let (mut conn, _) = RawConn::handshake(server.addr).await;
    open_call(&mut conn).await;
    spaced_pings(&mut conn, 6, Duration::from_millis(250)).await;
    four_fast_pings_strike_out(&mut conn, 1).await;
}

#[tokio::test]
async fn without_calls_pings_are_held_to_two_hours() {
    let server = TestServer::start_with_args(&["--keepalive-min-interval", "100ms"]).await;
    let (mut conn, _) = RawConn::handshake(server.addr).await;
    // The first is free, the next two are strikes.
    spaced_pings(&mut conn, 3, Duration::from_millis(150)).await;
    conn.write(&ping(4)).await;
    assert_too_many_pings(&mut conn, 0).await;
}

#[tokio::test]
async fn permit_without_calls_allows_the_interval_without_calls() {
    let server = TestServer::start_with_args(&[
        "--keepalive-min-interval",
        "100ms",
        "--keepalive-permit-without-calls",
    ])
    .await;
    let (mut conn, _) = RawConn::handshake(server.addr).await;
    spaced_pings(&mut conn, 6, Duration::from_millis(150)).await;
    four_fast_pings_strike_out(&mut conn, 0).await;
}

#[tokio::test]
async fn strikes_reset_when_the_server_sends_headers_or_data() {
    let server = TestServer::start_with_args(&["--keepalive-min-interval", "1s"]).await;
    let (mut conn, _) = RawConn::handshake(server.addr).await;
    // A ping, a call answered, a ping, a call answered...: each PING comes right
    // after the server's HEADERS and DATA, so none is a strike.
    for n in 1..=8u8 {
        ping_answered(&mut conn, n).await;
        let stream = 2 * u32::from(n) - 1;
        conn.write(&grpc_headers_frame(UNARY_PATH, stream, false)).await;
        conn.write(&encode_frame(
            frame_type::DATA,
            flags::END_STREAM,
            stream,
            &request_message(&request("x")),
        ))
        .await;
        conn.read_until(|frame| {
            assert_ne!(frame.kind, frame_type::GOAWAY, "struck: {frame:?}");
            frame.stream_id == stream
                && frame.kind == frame_type::HEADERS
                && frame.flags & flags::END_STREAM != 0
        })
        .await
        .expect("the call's trailers");
    }
    // Without the server's frames in between, strikes come.
    conn.write(&[ping(9), ping(10), ping(11), ping(12)].concat()).await;
    assert_too_many_pings(&mut conn, 15).await;
}

#[tokio::test]
async fn too_many_pings_over_tls() {
    let certs = TestCerts::generate();
    let server = TestServer::start_tls(&certs, false, &["--keepalive-min-interval", "1s"]).await;
    let mut config = certs.rustls_client(None);
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(server.addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    let tls = TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("TLS handshake");
    let mut conn = RawConn::over(tls);
    conn.start().await;
    conn.write(&[ping(1), ping(2), ping(3)].concat()).await;
    for n in 1..=3 {
        conn.read_until(|frame| is_ack_of(frame, n)).await.expect("an ACK");
    }
    conn.write(&ping(4)).await;
    assert_too_many_pings(&mut conn, 0).await;
}

/// connect-client with `--keepalive-interval` above the server's minimum:
/// PINGs all through a call that sends nothing for 2 s, never struck.
#[tokio::test]
async fn a_client_pinging_at_an_allowed_interval_is_never_struck() {
    let server = TestServer::start_with_args(&["--keepalive-min-interval", "100ms"]).await;
    let url = server.url();
    let stream = |interval: &str| {
        let args = ["connect-client", "--addr", &url, "--keepalive-interval", interval, "server-stream", "k"];
        let mut args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        args.extend(["--count", "2", "--interval-ms", "2000"].map(String::from));
        connect_client::run(Cli::parse_from(args))
    };
    stream("250ms").await.expect("a call with allowed pings");
    assert_eq!(server.stats.snapshot().server_stream, 1);
    // The same client pinging faster than the server allows is cut off mid-call
    // (`UNAVAILABLE: h2 protocol error: error reading a body from connection`).
    let error = stream("20ms").await.expect_err("struck out");
    assert!(matches!(&error, ClientError::Rpc(status) if status.code() == Code::Unavailable), "{error}");
}
