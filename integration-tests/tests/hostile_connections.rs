//! Slow and numerous peers: slowloris before and after the preface, and a
//! connection flood beyond `--max-connections`.

use std::time::Duration;

use integration_tests::{
    PROMPTLY, TestServer, assert_still_serving, scale,
    wire::frames::{PREFACE, RawConn, frame_type},
};

#[tokio::test]
async fn slowloris_connections_are_closed_while_others_are_served() {
    let server = TestServer::start_with_args(&["--handshake-timeout", "1s", "--idle-timeout", "1s"]).await;
    let count = scale(200, 1_000);
    let mut before_preface = Vec::with_capacity(count);
    let mut after_preface = Vec::with_capacity(count);
    for _ in 0..count {
        let mut conn = RawConn::connect(server.addr).await;
        conn.write(&PREFACE[..5]).await;
        before_preface.push(conn);
        after_preface.push(RawConn::open(server.addr).await);
    }
    tokio::time::timeout(PROMPTLY, server.connections.wait_until_at_most(2 * count))
        .await
        .expect("count settles");
    // Meanwhile a normal client is served.
    assert_still_serving(&server).await;
    // Every slow connection is closed by the server.
    for conn in before_preface.iter_mut().chain(after_preface.iter_mut()) {
        conn.expect_closed_within(PROMPTLY).await.expect("closed by the server");
    }
    drop((before_preface, after_preface));
    tokio::time::timeout(PROMPTLY, server.connections.wait_until_at_most(0)).await.expect("all released");
    assert_still_serving(&server).await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let limit = 5;
    let server = TestServer::start_with_args(&["--max-connections", "5"]).await;
    let mut admitted = Vec::new();
    for _ in 0..limit {
        admitted.push(RawConn::handshake(server.addr).await.0);
    }
    assert_eq!(server.connections.open(), limit);
    // Beyond the limit: the kernel completes the TCP handshake, but the server
    // does not accept, so no SETTINGS come back.
    // Past the kernel's accept backlog, connects are not answered at all: those time out.
    let extra = scale(50, 2_000);
    let mut connecting = tokio::task::JoinSet::new();
    for i in 0..extra {
        let addr = server.addr;
        connecting.spawn(async move {
            let conn =
                tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await;
            (i, conn.ok().and_then(Result::ok))
        });
    }
    let mut attempts = connecting.join_all().await;
    attempts.sort_by_key(|(i, _)| *i);
    let mut waiting = Vec::new();
    for (_, tcp) in attempts {
        if let Some(tcp) = tcp {
            let mut conn = RawConn::from_tcp(tcp);
            conn.write(PREFACE).await;
            waiting.push(conn);
        }
    }
    println!(
        "connection flood: {extra} beyond the limit of {limit}: {} queued by the kernel, {} not answered",
        waiting.len(),
        extra - waiting.len()
    );
    assert!(!waiting.is_empty());
    assert!(
        waiting[0].read_frame_within(Duration::from_millis(300)).await.is_err(),
        "accepted beyond the limit"
    );
    assert_eq!(server.connections.open(), limit);
    // One admitted connection leaves; the first waiting one gets in.
    drop(admitted.pop());
    let frame = waiting[0].read_frame().await.expect("accepted once a slot is free");
    assert_eq!(frame.kind, frame_type::SETTINGS);
    assert_eq!(server.connections.open(), limit);
    // All leave: the waiting ones are served in turn and the server never exceeds the limit.
    drop(admitted);
    drop(waiting);
    tokio::time::timeout(PROMPTLY, server.connections.wait_until_at_most(0)).await.expect("all released");
    assert_still_serving(&server).await;
}
