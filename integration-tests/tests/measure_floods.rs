//! Floods against the server binary, measured from outside: latency of a
//! well-behaved client, RSS and open files of the server. Ignored by default;
//! `scripts/floods` builds the binary and runs them, printing the figures.

use std::time::{Duration, Instant};

use connect_proto::ConnectServiceClient;
use integration_tests::{
    PROMPTLY,
    child::ChildServer,
    request,
    wire::{
        UNARY_PATH,
        frames::{PREFACE, RawConn, encode_frame, error_code, frame_type, grpc_headers_frame, rst_stream},
    },
};
use tokio::{io::AsyncWriteExt, sync::watch};
use tonic::transport::Channel;

const CALLS: usize = 2_000;
const PAIRS: u32 = 10_000;

async fn latencies(client: &mut ConnectServiceClient<Channel>, calls: usize) -> Vec<Duration> {
    let mut all = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        client.unary_rpc(request("calm")).await.expect("served");
        all.push(started.elapsed());
    }
    all.sort();
    all
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// One abusive connection: up to `PAIRS` HEADERS+RST_STREAM pairs; returns (pairs written, GOAWAY code).
async fn rapid_reset_once(addr: std::net::SocketAddr) -> (u32, Option<u32>) {
    let (mut conn, _) = RawConn::handshake(addr).await;
    let mut written = 0;
    let mut batch = Vec::new();
    for i in 0..PAIRS {
        let id = 2 * i + 1;
        batch.extend(grpc_headers_frame(UNARY_PATH, id, false));
        batch.extend(rst_stream(id, error_code::CANCEL));
        if batch.len() >= 16 * 1024 || i + 1 == PAIRS {
            if !conn.try_write(&batch).await {
                break;
            }
            written = i + 1;
            batch.clear();
        }
    }
    let frames = conn.expect_closed_within(PROMPTLY).await.unwrap_or_default();
    (written, frames.iter().find(|f| f.kind == frame_type::GOAWAY).map(|f| f.error_code()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run scripts/floods"]
async fn rapid_reset_keeps_other_clients_fast() {
    let server = ChildServer::spawn(&[]).await;
    let addr = server.addr.parse().unwrap();
    let mut client = ConnectServiceClient::connect(server.url()).await.unwrap();
    latencies(&mut client, 200).await; // warm up
    let calm = latencies(&mut client, CALLS).await;
    let rss_before = server.rss_kib();

    let (stop_tx, stop) = watch::channel(false);
    let attacker = tokio::spawn(async move {
        let (mut connections, mut pairs, mut goaways) = (0u32, 0u64, 0u32);
        while !*stop.borrow() {
            let (written, goaway) = rapid_reset_once(addr).await;
            connections += 1;
            pairs += u64::from(written);
            goaways += u32::from(goaway == Some(0xb));
        }
        (connections, pairs, goaways)
    });
    let attacked = latencies(&mut client, CALLS).await;
    stop_tx.send(true).unwrap();
    let (connections, pairs, goaways) = attacker.await.unwrap();
    let rss_after = server.rss_kib();

    let (calm_p99, attacked_p99) = (percentile(&calm, 0.99), percentile(&attacked, 0.99));
    let ratio = attacked_p99.as_secs_f64() / calm_p99.as_secs_f64();
    println!(
        "rapid reset: {connections} abusive connections, {pairs} HEADERS+RST_STREAM pairs written, {goaways} GOAWAY ENHANCE_YOUR_CALM, {} server log lines",
        server.output_lines()
    );
    println!(
        "rapid reset: unary p50 calm {:?} attacked {:?}; p99 calm {calm_p99:?} attacked {attacked_p99:?} ({ratio:.2}x); RSS {rss_before} -> {rss_after} KiB",
        percentile(&calm, 0.5),
        percentile(&attacked, 0.5)
    );
    assert_eq!(goaways, connections, "every abusive connection got GOAWAY");
    assert!(ratio < 10.0, "p99 grew {ratio:.2}x");
}

/// Floods `frame` on one connection of a server started with `args` while another task
/// drains the replies; returns RSS before and after.
async fn flood_rss(args: &[&str], frame: Vec<u8>, count: usize, read_replies: bool) -> (u64, u64, usize) {
    let server = ChildServer::spawn(args).await;
    let addr = server.addr.parse().unwrap();
    let rss_before = server.rss_kib();
    let (conn, _) = RawConn::handshake(addr).await;
    let (mut reader, mut writer) = conn.tcp.into_split();
    let drain = tokio::spawn(async move {
        let mut sink = vec![0u8; 64 * 1024];
        let mut total = 0usize;
        if read_replies {
            use tokio::io::AsyncReadExt;
            while let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(500), reader.read(&mut sink)).await
            {
                if n == 0 {
                    break;
                }
                total += n;
            }
        }
        (reader, total)
    });
    let batch: Vec<u8> = std::iter::repeat_n(frame, 1_000).flatten().collect();
    let mut sent = 0;
    while sent < count {
        // A peer that does not read makes the server stop reading too: that is the bound.
        match tokio::time::timeout(Duration::from_secs(2), writer.write_all(&batch)).await {
            Ok(Ok(())) => sent += 1_000,
            _ => break,
        }
    }
    let rss_peak = server.rss_kib();
    let (_reader, replies) = drain.await.unwrap();
    println!("    sent {sent} frames, {replies} reply bytes read");
    drop(writer);
    (rss_before, rss_peak, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run scripts/floods"]
async fn ping_and_settings_floods_do_not_grow_memory() {
    let ping = encode_frame(frame_type::PING, 0, 0, &[7; 8]);
    let settings = encode_frame(frame_type::SETTINGS, 0, 0, &[0, 4, 0, 1, 0, 0]);
    // The keepalive policy would end a PING flood at its fourth PING: off, to
    // measure h2's own bound.
    let policy_off: &[&str] = &["--keepalive-min-interval", "0"];
    for (name, frame, args) in [("PING", ping, policy_off), ("SETTINGS", settings, &[])] {
        for read in [true, false] {
            let (before, after, sent) = flood_rss(args, frame.clone(), 1_000_000, read).await;
            println!(
                "{name} flood ({}): {sent} frames, server RSS {before} -> {after} KiB (+{} KiB)",
                if read { "acks read" } else { "acks never read" },
                after.saturating_sub(before)
            );
            assert!(after < before + 16 * 1024, "{name} flood grew RSS by more than 16 MiB");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run scripts/floods"]
async fn slowloris_full_scale_is_closed_and_fds_return() {
    let server = ChildServer::spawn(&["--handshake-timeout", "2s", "--idle-timeout", "2s"]).await;
    let addr = server.addr.parse().unwrap();
    let (rss0, fds0) = (server.rss_kib(), server.open_files());
    let mut slow = Vec::new();
    for _ in 0..1_000 {
        let mut conn = RawConn::connect(addr).await;
        conn.write(&PREFACE[..5]).await;
        slow.push(conn);
        slow.push(RawConn::open(addr).await);
    }
    let (rss1, fds1) = (server.rss_kib(), server.open_files());
    let mut client = ConnectServiceClient::connect(server.url()).await.unwrap();
    let during = latencies(&mut client, 200).await;
    let started = Instant::now();
    for conn in &mut slow {
        conn.expect_closed_within(Duration::from_secs(10)).await.expect("closed by the server");
    }
    let closed_after = started.elapsed();
    drop(slow);
    drop(client);
    let deadline = Instant::now() + PROMPTLY;
    while server.open_files() > fds0 + 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (rss2, fds2) = (server.rss_kib(), server.open_files());
    println!(
        "slowloris: 1000 before-preface + 1000 idle-after-preface; fds {fds0} -> {fds1} -> {fds2}; RSS {rss0} -> {rss1} -> {rss2} KiB; all closed {closed_after:?} after the normal client's 200 calls (p99 {:?})",
        percentile(&during, 0.99)
    );
    assert!(fds2 <= fds0 + 1, "descriptors not released: {fds0} -> {fds2}");
}

/// Opens `streams` server streams (3 replies, 2 s apart) on each of
/// `connections` raw connections, draining the replies; returns the server's
/// peak RSS over the next 5 s (KiB), its RSS 30 s after the streams ended,
/// and how many of the calls were refused (`RESOURCE_EXHAUSTED`).
/// What each stream of [`many_streams`] is.
#[derive(Clone, Copy)]
enum Shape {
    /// A server stream of 3 replies, 2 s apart, its request half-closed.
    PacedServer,
    /// A client stream that sends one small message and never half-closes.
    HalfOpenClient,
    /// A server stream of 1,000 replies of 1 KiB at once, to a client that
    /// grants every flow-control window and never reads its socket.
    UnreadServer,
}

async fn many_streams(
    args: &[&str],
    connections: usize,
    streams: u32,
    shape: Shape,
) -> (u64, u64, u64, usize) {
    use prost::Message as _;
    let server = ChildServer::spawn(args).await;
    let addr: std::net::SocketAddr = server.addr.parse().unwrap();
    let rss_idle = server.rss_kib();
    let message = match shape {
        Shape::UnreadServer => {
            connect_proto::RequestMessage { request_data: "u".repeat(1_000), count: 1_000, interval_ms: 0 }
        }
        _ => connect_proto::RequestMessage { request_data: "hold".into(), count: 3, interval_ms: 2_000 },
    };
    let mut body = vec![0u8];
    body.extend_from_slice(&u32::try_from(message.encoded_len()).unwrap().to_be_bytes());
    body.extend_from_slice(&message.encode_to_vec());
    let (path, end_stream) = match shape {
        Shape::PacedServer => ("/ConnectService/ServerStreamRPC", 0x1),
        Shape::HalfOpenClient => ("/ConnectService/ClientStreamRPC", 0x0),
        Shape::UnreadServer => ("/ConnectService/ServerStreamRPC", 0x1),
    };
    let mut batch = Vec::new();
    for n in 0..streams {
        let id = 1 + 2 * n;
        batch.extend(grpc_headers_frame(path, id, false));
        batch.extend(encode_frame(frame_type::DATA, end_stream, id, &body));
    }
    let refused = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (mut conn, _) = RawConn::handshake(addr).await;
        // A connection window that never runs out: this client reads everything.
        conn.write(&encode_frame(frame_type::WINDOW_UPDATE, 0, 0, &(1u32 << 30).to_be_bytes())).await;
        if let Shape::UnreadServer = shape {
            // ...or grants every stream the largest window and never reads at all.
            let mut window = vec![0, 4]; // SETTINGS_INITIAL_WINDOW_SIZE
            window.extend_from_slice(&0x7fff_ffffu32.to_be_bytes());
            conn.write(&encode_frame(frame_type::SETTINGS, 0, 0, &window)).await;
            conn.write(&batch).await;
            tasks.push(tokio::spawn(async move {
                std::future::pending::<()>().await;
                conn
            }));
            continue;
        }
        conn.write(&batch).await;
        let refused = std::sync::Arc::clone(&refused);
        // Reads every frame until each stream has ended: a refusal is a trailers-only
        // response, HEADERS with END_STREAM and no DATA before it.
        tasks.push(tokio::spawn(async move {
            let mut ended = 0;
            let mut with_data = std::collections::HashSet::new();
            while ended < streams {
                let Ok(Some(frame)) = conn.read_frame_within(Duration::from_secs(10)).await else { break };
                if frame.kind == frame_type::DATA {
                    with_data.insert(frame.stream_id);
                } else if frame.kind == frame_type::HEADERS && frame.flags & 0x1 != 0 {
                    ended += 1;
                    if !with_data.contains(&frame.stream_id) {
                        refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
            conn
        }));
    }
    let mut peak = 0;
    for _ in 0..50 {
        peak = peak.max(server.rss_kib());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut conns = Vec::new();
    for task in tasks {
        if let Shape::UnreadServer = shape {
            // Never reading, it never ends by itself: dropping it closes the connection.
            task.abort();
        }
        if let Ok(conn) = task.await {
            conns.push(conn);
        }
    }
    drop(conns);
    tokio::time::sleep(Duration::from_secs(30)).await;
    let after = server.rss_kib();
    let refused = refused.load(std::sync::atomic::Ordering::Relaxed);
    (rss_idle, peak, after, refused)
}

/// [`many_streams`] of `shape` (named `what` in the report), with default
/// flags and without the call budget, one line each.
async fn with_and_without_the_budget(shape: Shape, what: &str) {
    let (connections, streams) = (200, 1_000);
    for (label, args) in [
        ("default flags", &[][..]),
        ("no budget (--max-calls-in-flight 1000000)", &["--max-calls-in-flight", "1000000"][..]),
    ] {
        let (idle, peak, after, refused) = many_streams(args, connections, streams, shape).await;
        println!(
            "{what}, {label}: {connections} connections x {streams} streams: RSS idle {} MiB, \
             peak {} MiB, 30 s after {} MiB; {refused} of {} calls refused",
            idle / 1024,
            peak / 1024,
            after / 1024,
            connections * streams as usize
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run scripts/floods"]
async fn many_streams_stay_within_the_call_budget() {
    with_and_without_the_budget(Shape::PacedServer, "many server streams").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run scripts/floods"]
async fn client_streams_that_never_half_close_stay_within_the_call_budget() {
    with_and_without_the_budget(Shape::HalfOpenClient, "client streams of one message, never half-closed")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run scripts/floods"]
async fn server_streams_never_read_stay_within_the_call_budget() {
    let (connections, streams) = (20, 1_000);
    let (idle, peak, after, _) = many_streams(&[], connections, streams, Shape::UnreadServer).await;
    println!(
        "unread server streams, default flags: {connections} connections x {streams} server streams of 1,000 \
         1 KiB replies, every window granted, the socket never read: RSS idle {} MiB, peak {} MiB, \
         30 s after the connections closed {} MiB",
        idle / 1024,
        peak / 1024,
        after / 1024
    );
}

/// `calls` unary calls over 10 connections, each sending all but 1 KiB of a
/// 4 MiB message and then holding its stream open; returns the server's idle
/// and peak RSS (KiB) over 5 s, and how many calls were refused at once.
async fn large_messages_held(args: &[&str], calls: usize) -> (u64, u64, usize) {
    use integration_tests::wire::{UNARY_PATH, client, grpc::grpc_message};
    use prost::Message as _;
    let server = ChildServer::spawn(args).await;
    let addr: std::net::SocketAddr = server.addr.parse().unwrap();
    let idle = server.rss_kib();
    let big = connect_proto::RequestMessage {
        request_data: "m".repeat(4 * 1024 * 1024 - 64),
        ..Default::default()
    };
    let whole = grpc_message(&big.encode_to_vec());
    let part = whole.slice(..whole.len() - 1024);
    let mut connections = Vec::new();
    for _ in 0..10 {
        connections.push(client::h2_connect(addr).await);
    }
    let mut held = Vec::new();
    for n in 0..calls {
        let connection = &mut connections[n % 10];
        held.push(
            client::send_keep_open(connection, client::grpc_request(UNARY_PATH), part.clone(), false).await,
        );
    }
    let mut peak = 0;
    for _ in 0..50 {
        peak = peak.max(server.rss_kib());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut refused = 0;
    for (response, _stream) in held {
        // A held call has no answer yet; a refused one has its RESOURCE_EXHAUSTED.
        if let Ok(Ok(response)) = tokio::time::timeout(Duration::from_millis(20), response).await
            && response.headers().get("grpc-status").is_some_and(|code| code == "8")
        {
            refused += 1;
        }
    }
    (idle, peak, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run scripts/floods"]
async fn large_messages_held_in_pieces_stay_within_the_byte_budget() {
    let calls = 300;
    for (label, args) in
        [("default flags", &[][..]), ("no byte budget", &["--max-pending-message-bytes", "100000000000"][..])]
    {
        let (idle, peak, refused) = large_messages_held(args, calls).await;
        println!(
            "large messages, {label}: {calls} calls each holding 4 MiB - 1 KiB of a 4 MiB message: \
             RSS idle {} MiB, peak {} MiB; {refused} refused",
            idle / 1024,
            peak / 1024
        );
    }
}
