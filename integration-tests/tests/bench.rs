//! `connect-client bench`: every call counted, messages counted per RPC kind,
//! failures counted by status code and turned into exit code 1.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use clap::Parser;
use connect_client::{
    Cli, ClientError, Output,
    bench::{BenchSettings, Report, runner},
    commands::Action,
};
use integration_tests::{
    PROMPTLY, TestServer,
    certs::{TestCerts, path},
};
use tokio::net::TcpListener;

/// The bench run `connect-client --addr {url} bench {args}` asks for.
fn settings(url: &str, args: &[&str]) -> BenchSettings {
    let mut argv = vec!["connect-client", "--addr", url, "bench"];
    argv.extend_from_slice(args);
    match Cli::parse_from(argv).settings().expect("usable flags").action {
        Action::Bench(settings) => *settings,
        other => panic!("parsed as {other:?}"),
    }
}

async fn bench(server: &TestServer, args: &[&str]) -> Report {
    runner::run(&settings(&server.url(), args)).await.expect("bench ran")
}

#[tokio::test]
async fn counts_every_unary_call_over_several_connections() {
    let server = TestServer::start().await;
    let report = bench(&server, &["--requests", "40", "--connections", "3", "--concurrency", "5"]).await;
    assert_eq!((report.tally.ok, report.tally.failed(), report.tally.messages), (40, 0, 40));
    assert_eq!(report.tally.latency_us.len(), 40);
    assert_eq!(server.stats.snapshot().unary, 40);
}

#[tokio::test]
async fn counts_the_messages_of_each_streaming_kind() {
    let server = TestServer::start().await;
    let report = bench(&server, &["--rpc", "server-stream", "--count", "7", "--requests", "10"]).await;
    assert_eq!((report.tally.ok, report.tally.messages), (10, 70));
    let report = bench(&server, &["--rpc", "client-stream", "--count", "3", "--requests", "5"]).await;
    assert_eq!((report.tally.ok, report.tally.messages), (5, 15));
    let report = bench(&server, &["--rpc", "bidi", "--count", "4", "--requests", "6"]).await;
    assert_eq!((report.tally.ok, report.tally.messages), (6, 24));
    let stats = server.stats.snapshot();
    assert_eq!((stats.server_stream, stats.client_stream, stats.bidi), (10, 5, 6));
}

#[tokio::test]
async fn a_duration_run_counts_exactly_the_calls_the_server_saw() {
    let server = TestServer::start().await;
    let report = bench(&server, &["--duration", "200ms", "--concurrency", "4"]).await;
    assert!(report.tally.ok > 0);
    assert!(report.elapsed >= Duration::from_millis(200), "{:?}", report.elapsed);
    assert_eq!(report.tally.ok, server.stats.snapshot().unary);
}

#[tokio::test]
async fn a_fixed_rate_makes_the_scheduled_number_of_calls() {
    let server = TestServer::start().await;
    // 100 calls/s over two loops: one call every 20 ms each, staggered by 10 ms: 30 due in 300 ms.
    let report = bench(&server, &["--rate", "100/s", "--duration", "300ms", "--concurrency", "2"]).await;
    assert_eq!(report.tally.ok, 30);
}

#[tokio::test]
async fn a_low_rate_does_not_outlast_the_duration() {
    let server = TestServer::start().await;
    // 1 call/s over 20 loops: loop j is first due j/20 of 20 s in, so only loop 0 has a call in 300 ms.
    let run = bench(&server, &["--rate", "1/s", "--duration", "300ms", "--concurrency", "20"]);
    let report = tokio::time::timeout(PROMPTLY, run).await.expect("the run ends with its duration");
    assert_eq!(report.tally.ok, 1);
}

#[tokio::test]
async fn calls_to_a_server_that_never_answers_end_deadline_exceeded() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // An HTTP/2 server that takes every call and never answers it.
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut connection = h2::server::handshake(tcp).await.unwrap();
        let mut held = Vec::new();
        while let Some(Ok(call)) = connection.accept().await {
            held.push(call);
        }
    });
    let settings = settings(&url, &["--timeout", "100ms", "--requests", "2", "--concurrency", "2"]);
    let run = runner::run(&settings);
    let report = tokio::time::timeout(PROMPTLY, run).await.expect("the client gives up").expect("bench ran");
    assert_eq!(report.tally.ok, 0);
    assert_eq!(report.tally.errors.iter().collect::<Vec<_>>(), vec![(&"DEADLINE_EXCEEDED", &2)]);
}

/// At the server's limit of concurrent streams a call waits for a free one
/// before it makes its stream, as grpc-go's client does: a call whose deadline
/// passes while it waits never reaches the server (h2's own queue would send
/// its HEADERS and then RST_STREAM, which servers count as a Rapid Reset).
#[tokio::test]
async fn calls_waiting_for_a_stream_at_the_servers_limit_never_reach_it() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (streams_seen, seen) = tokio::sync::oneshot::channel();
    // A server that allows one stream at a time and never answers: it counts
    // the streams the client opens until the client closes the connection.
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut connection =
            h2::server::Builder::new().max_concurrent_streams(1).handshake::<_, Bytes>(tcp).await.unwrap();
        let mut held = Vec::new();
        while let Some(Ok(call)) = connection.accept().await {
            held.push(call);
        }
        let _ = streams_seen.send(held.len());
    });
    // Three calls at once, one of them on the one stream; when all three have
    // given up, a fourth takes the stream while the connection is still open.
    let settings = settings(&url, &["--timeout", "100ms", "--requests", "4", "--concurrency", "3"]);
    let report = tokio::time::timeout(PROMPTLY, runner::run(&settings)).await.expect("the client gives up");
    let report = report.expect("bench ran");
    assert_eq!(report.tally.errors.iter().collect::<Vec<_>>(), vec![(&"DEADLINE_EXCEEDED", &4)]);
    assert_eq!(tokio::time::timeout(PROMPTLY, seen).await.expect("the connection closes"), Ok(2));
}

/// A call sent late sends what is left of its deadline, as a gRPC client
/// does: the server knows how long its client will still wait.
#[tokio::test]
async fn a_call_sent_late_sends_what_is_left_of_its_deadline() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let timeouts = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&timeouts);
    // The first call is answered after 300 ms: the second, due 100 ms after
    // it (one loop at 10 calls/s), is sent at least 200 ms late.
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut connection = h2::server::handshake(tcp).await.unwrap();
        while let Some(Ok((request, respond))) = connection.accept().await {
            let timeout = request.headers()["grpc-timeout"].to_str().unwrap().to_owned();
            let first = {
                let mut seen = seen.lock().unwrap();
                seen.push(connect_proto::timeout::parse(&timeout).expect("a grpc-timeout"));
                seen.len() == 1
            };
            tokio::spawn(async move {
                if first {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                answer(respond);
            });
        }
    });
    let args = ["--timeout", "1s", "--rate", "10", "--concurrency", "1", "--requests", "2"];
    let report = runner::run(&settings(&url, &args)).await.expect("bench ran");
    assert_eq!((report.tally.ok, report.tally.failed()), (2, 0));
    let timeouts = timeouts.lock().unwrap().clone();
    assert_eq!(timeouts.len(), 2);
    assert!(
        timeouts[0] > Duration::from_millis(800) && timeouts[0] <= Duration::from_secs(1),
        "{timeouts:?}"
    );
    assert!(timeouts[1] > Duration::ZERO && timeouts[1] <= Duration::from_millis(800), "{timeouts:?}");
}

/// A server that never answers a PING (pajamax, a peer `bench/run`
/// measures, is one) is benched as any other: a new connection's calls wait
/// only for the server's SETTINGS, and then fill its limit of streams at once.
#[tokio::test]
async fn a_server_that_never_answers_ping_gets_its_limit_of_streams_at_once() {
    const PING: u8 = 0x6;
    const LIMIT: usize = 8;
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server_addr = server.local_addr().unwrap();
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", proxy.local_addr().unwrap());
    // The server answers its calls LIMIT at a time, once LIMIT are open at
    // once: the run ends only if the client fills the limit.
    tokio::spawn(async move {
        let (tcp, _) = server.accept().await.unwrap();
        let mut connection = h2::server::Builder::new()
            .max_concurrent_streams(LIMIT as u32)
            .handshake::<_, Bytes>(tcp)
            .await
            .unwrap();
        let mut held = Vec::new();
        while let Some(Ok((_, respond))) = connection.accept().await {
            held.push(respond);
            if held.len() >= LIMIT {
                held.drain(..).for_each(answer);
            }
        }
    });
    // Between them, a proxy drops every PING either way.
    tokio::spawn(async move {
        let ((client_read, client_write), (server_read, server_write)) = proxied(&proxy, server_addr).await;
        let no_pings = async |kind, _| if kind == PING { Pass::Never } else { Pass::Now };
        tokio::spawn(relay_frames(server_read, client_write, 0, no_pings));
        relay_frames(client_read, server_write, 24, no_pings).await;
    });
    let concurrency = LIMIT.to_string();
    let requests = (3 * LIMIT).to_string();
    let args = ["--connections", "1", "--concurrency", &concurrency, "--requests", &requests];
    let report = tokio::time::timeout(PROMPTLY, runner::run(&settings(&url, &args)))
        .await
        .expect("the client fills the server's limit")
        .expect("bench ran");
    assert_eq!((report.tally.ok, report.tally.failed()), (3 * LIMIT as u64, 0));
}

/// A trailers-only OK answer on `respond`'s stream (an error: the stream is gone).
fn answer(mut respond: h2::server::SendResponse<Bytes>) {
    let head = http::Response::builder()
        .header("content-type", "application/grpc")
        .header("grpc-status", "0")
        .body(())
        .unwrap();
    let _ = respond.send_response(head, true);
}

/// The halves of the next connection `proxy` accepts and of a new one to
/// `server`, for a test to relay frames between them.
async fn proxied(
    proxy: &TcpListener,
    server: std::net::SocketAddr,
) -> (
    (tokio::net::tcp::OwnedReadHalf, tokio::net::tcp::OwnedWriteHalf),
    (tokio::net::tcp::OwnedReadHalf, tokio::net::tcp::OwnedWriteHalf),
) {
    let (client, _) = proxy.accept().await.unwrap();
    let upstream = tokio::net::TcpStream::connect(server).await.unwrap();
    (client.into_split(), upstream.into_split())
}

/// What [`relay_frames`] does with a frame.
#[derive(PartialEq)]
enum Pass {
    /// On, with any held before it.
    Now,
    /// Held, to go on before the next frame that goes on now.
    Later,
    /// Dropped.
    Never,
}

/// Copies HTTP/2 frames from `from` to `to` (after `preface` bytes), asking
/// `each` with every frame's type and flags what to do with it.
async fn relay_frames(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    preface: usize,
    mut each: impl AsyncFnMut(u8, u8) -> Pass,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (mut pending, mut held) = (Vec::new(), Vec::new());
    let mut skip = preface;
    let mut chunk = vec![0; 64 * 1024];
    loop {
        let Ok(read @ 1..) = from.read(&mut chunk).await else { return };
        pending.extend_from_slice(&chunk[..read]);
        let mut at = 0;
        loop {
            if skip > 0 {
                let through = skip.min(pending.len() - at);
                held.extend_from_slice(&pending[at..at + through]);
                skip -= through;
                at += through;
                if skip > 0 {
                    break;
                }
            }
            let Some(header) = pending.get(at..at + 9) else { break };
            let length = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
            if pending.len() < at + 9 + length {
                break;
            }
            let frame = at..at + 9 + length;
            at += 9 + length;
            match each(header[3], header[4]).await {
                Pass::Never => continue,
                Pass::Later => held.extend_from_slice(&pending[frame]),
                Pass::Now => {
                    held.extend_from_slice(&pending[frame]);
                    if to.write_all(&held).await.is_err() {
                        return;
                    }
                    held.clear();
                }
            }
        }
        pending.drain(..at);
    }
}

/// An overloaded server reads a cancelled call's RST_STREAM late, and answers
/// it meanwhile: the load generator drops those answers and keeps its
/// connection (h2's defaults would close it after 1,024 of them).
#[tokio::test]
async fn answers_to_calls_cancelled_at_their_deadline_do_not_close_the_connection() {
    const RST_STREAM: u8 = 0x3;
    const HEADERS: u8 = 0x1;
    const END_STREAM: u8 = 0x1;
    // More calls than h2 remembers cancelling (50) plus the 1,024 errors it allows.
    const FIRST_WAVE: usize = 1_100;
    let server = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server_addr = server.local_addr().unwrap();
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", proxy.local_addr().unwrap());
    let (all_cancelled, cancelled) = tokio::sync::oneshot::channel::<()>();
    let (all_answered, answered) = tokio::sync::oneshot::channel::<()>();

    // The server holds the calls it gets until the client has cancelled the
    // whole first wave, then answers them, and answers every later call at once.
    tokio::spawn(async move {
        let (tcp, _) = server.accept().await.unwrap();
        let mut connection = h2::server::handshake(tcp).await.unwrap();
        let mut held = Vec::new();
        let mut cancelled = Some(cancelled);
        loop {
            tokio::select! {
                call = connection.accept() => match call {
                    Some(Ok((_, respond))) if cancelled.is_some() => held.push(respond),
                    Some(Ok((_, respond))) => answer(respond),
                    _ => return,
                },
                Ok(()) = async { cancelled.as_mut().unwrap().await }, if cancelled.is_some() => {
                    cancelled = None;
                    held.drain(..).for_each(answer);
                }
            }
        }
    });
    // Between them, a proxy stands for the server's late reading: from the
    // first RST_STREAM on, it holds the client's bytes until the server's
    // answers to the first wave have reached the client.
    tokio::spawn(async move {
        let ((client_read, client_write), (server_read, server_write)) = proxied(&proxy, server_addr).await;
        let mut answers = 0;
        let mut all_answered = Some(all_answered);
        tokio::spawn(relay_frames(server_read, client_write, 0, async move |kind, flags| {
            // Trailers: a HEADERS frame that ends its stream.
            if kind == HEADERS && flags & END_STREAM != 0 {
                answers += 1;
                if answers == FIRST_WAVE {
                    let _ = all_answered.take().map(|sender| sender.send(()));
                }
            }
            Pass::Now
        }));
        let (mut resets, mut all_cancelled, mut answered) = (0, Some(all_cancelled), Some(answered));
        relay_frames(client_read, server_write, 24, async move |kind, _| {
            if answered.is_none() {
                return Pass::Now;
            }
            if kind == RST_STREAM {
                resets += 1;
            }
            if resets < FIRST_WAVE {
                // Nothing is held before the first RST_STREAM.
                return if resets == 0 { Pass::Now } else { Pass::Later };
            }
            let _ = all_cancelled.take().map(|sender| sender.send(()));
            let _ = answered.take().unwrap().await;
            Pass::Now
        })
        .await;
    });

    let concurrency = FIRST_WAVE.to_string();
    let requests = (2 * FIRST_WAVE).to_string();
    // Each call loop makes two calls; the second waits on its way to the
    // server while the first wave's answers come back, well within its deadline.
    let args =
        ["--timeout", "500ms", "--connections", "1", "--concurrency", &concurrency, "--requests", &requests];
    let settings = settings(&url, &args);
    let report =
        tokio::time::timeout(PROMPTLY, runner::run(&settings)).await.expect("the run ends").expect("ran");
    assert_eq!(report.tally.errors.iter().collect::<Vec<_>>(), vec![(&"DEADLINE_EXCEEDED", &1_100)]);
    assert_eq!((report.tally.ok, report.tally.loops_stopped), (1_100, 0));
}

#[tokio::test]
async fn an_address_without_a_scheme_works_as_for_the_other_commands() {
    let server = TestServer::start().await;
    let report =
        runner::run(&settings(&server.addr.to_string(), &["--requests", "3"])).await.expect("bench ran");
    assert_eq!(report.tally.ok, 3);
}

#[tokio::test]
async fn plain_http_errors_are_counted_as_grpc_clients_read_them() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addrs = [format!("http://{}", listener.local_addr().unwrap())];
    // A proxy whose upstream is down: HTTP 503 with no gRPC status.
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut connection = h2::server::handshake(tcp).await.unwrap();
        while let Some(Ok((_, mut respond))) = connection.accept().await {
            let response = http::Response::builder().status(503).body(()).unwrap();
            respond.send_response(response, true).unwrap();
        }
    });
    let report = runner::run(&settings(&addrs[0], &["--requests", "4"])).await.expect("bench ran");
    assert_eq!(report.tally.errors.iter().collect::<Vec<_>>(), vec![(&"UNAVAILABLE", &4)]);
}

#[tokio::test]
async fn failures_are_counted_by_code_and_exit_1() {
    let server = TestServer::start_with_args(&["--max-stream-count", "5"]).await;
    let args = ["--rpc", "server-stream", "--count", "6", "--requests", "8", "--concurrency", "2"];
    let report = bench(&server, &args).await;
    assert_eq!(report.tally.ok, 0);
    assert_eq!(report.tally.errors.iter().collect::<Vec<_>>(), vec![(&"INVALID_ARGUMENT", &8)]);
    assert_eq!(report.json()["errors"]["INVALID_ARGUMENT"], 8);

    let url = server.url();
    let mut argv = vec!["connect-client", "--addr", url.as_str(), "bench", "--json"];
    argv.extend_from_slice(&args);
    let error = connect_client::run(Cli::parse_from(argv)).await.expect_err("calls failed");
    assert!(matches!(error, ClientError::CallsFailed(8)), "{error:?}");
    assert_eq!(error.exit_code(), std::process::ExitCode::from(1));
}

#[tokio::test]
async fn an_unreachable_server_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let error = runner::run(&settings(&url, &["--requests", "1"])).await.expect_err("nothing listens");
    assert!(matches!(&error, ClientError::Connect { addr, .. } if *addr == url), "{error:?}");
    assert_eq!(error.exit_code(), std::process::ExitCode::from(3));
}

#[tokio::test]
async fn sends_the_bearer_token_and_counts_rejections_without_it() {
    let server = TestServer::start_with_args(&["--auth-token", "s3cret"]).await;
    let url = server.url();
    let args = ["--requests", "6", "--concurrency", "2"];
    let with =
        runner::run(&settings(&url, &[&["--token", "s3cret"], &args[..]].concat())).await.expect("ran");
    assert_eq!((with.tally.ok, with.tally.failed()), (6, 0));
    let without = runner::run(&settings(&url, &args)).await.expect("ran");
    assert_eq!(without.tally.errors.iter().collect::<Vec<_>>(), vec![(&"UNAUTHENTICATED", &6)]);
}

/// Serves `listener` as an HTTP/2 server that answers every call OK at once
/// (trailers-only) and keeps the request headers of each.
fn answer_ok(listener: TcpListener) -> Arc<Mutex<Vec<http::HeaderMap>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let kept = Arc::clone(&kept);
            tokio::spawn(async move {
                let mut connection = h2::server::handshake(tcp).await.unwrap();
                while let Some(Ok((request, mut respond))) = connection.accept().await {
                    kept.lock().unwrap().push(request.headers().clone());
                    let response = http::Response::builder()
                        .header("content-type", "application/grpc")
                        .header("grpc-status", "0")
                        .body(())
                        .unwrap();
                    respond.send_response(response, true).unwrap();
                }
            });
        }
    });
    seen
}

#[tokio::test]
async fn sends_the_header_flags_on_every_call() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = answer_ok(listener);
    let args =
        ["-H", "x-bench-run: 42", "-H", "trace-bin: AAEC/w==", "--requests", "5", "--concurrency", "2"];
    let report = runner::run(&settings(&url, &args)).await.expect("bench ran");
    assert_eq!((report.tally.ok, report.tally.failed()), (5, 0));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 5);
    for headers in seen.iter() {
        assert_eq!(headers.get("x-bench-run").unwrap(), "42");
        assert_eq!(headers.get("trace-bin").unwrap(), "AAEC/w");
        assert_eq!(headers.get("content-type").unwrap(), "application/grpc");
    }
}

#[tokio::test]
async fn wait_for_ready_waits_for_a_server_that_is_not_up_yet() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let url = format!("http://{addr}");
    let args = ["--wait-for-ready", "--connect-timeout", "10s", "--requests", "3"];
    let settings = settings(&url, &args);
    let run = tokio::spawn(async move { runner::run(&settings).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!run.is_finished(), "bench waits instead of failing");
    let seen = answer_ok(TcpListener::bind(addr).await.expect("rebind the same address"));
    let report = tokio::time::timeout(PROMPTLY, run).await.expect("bench ends").unwrap().expect("bench ran");
    assert_eq!((report.tally.ok, report.tally.failed()), (3, 0));
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn refuses_the_global_flags_it_cannot_honour() {
    for (flags, message) in [
        (
            ["--retries", "2"],
            "error: bench does not retry calls: --retries would hide the failures it measures",
        ),
        (
            ["--compress", "gzip"],
            "error: bench sends and reads uncompressed messages only: --compress would not be honoured",
        ),
    ] {
        let mut argv = vec!["connect-client", "--addr", "http://127.0.0.1:1"];
        argv.extend_from_slice(&flags);
        argv.extend_from_slice(&["bench", "--requests", "1"]);
        let error = connect_client::run(Cli::parse_from(argv)).await.expect_err("refused");
        assert_eq!(error.to_string(), message);
        assert_eq!(error.exit_code(), std::process::ExitCode::from(2));
    }
}

#[tokio::test]
async fn call_loops_whose_connection_the_server_closed_go_on_on_a_new_one() {
    // The server asks each connection to go away after 300 ms and closes it 100 ms later.
    let server = TestServer::start_with_args(&[
        "--max-connection-age",
        "300ms",
        "--max-connection-age-grace",
        "100ms",
    ])
    .await;
    let report = bench(
        &server,
        &["--duration", "1500ms", "--warmup", "0s", "--connections", "2", "--concurrency", "4"],
    )
    .await;
    // Each of the 2 connections aged out at least twice in 1.5 s, and each new
    // one served calls (a connection that serves none is not replaced).
    assert!(report.tally.reconnects >= 4, "{} reconnects", report.tally.reconnects);
    assert_eq!(report.tally.loops_stopped, 0);
    // A loop fails at most the one call it starts on a connection going away.
    let failed = report.tally.failed();
    assert!(
        failed <= 2 * report.tally.reconnects,
        "{failed} failures, {} reconnects",
        report.tally.reconnects
    );
    assert_eq!(report.tally.errors.keys().copied().filter(|code| *code != "UNAVAILABLE").count(), 0);
    assert_eq!(report.tally.ok, server.stats.snapshot().unary);
    let line = format!("  reconnected {} times: the server closed connections\n", report.tally.reconnects);
    assert!(report.table().contains(&line), "{}", report.table());
    assert_eq!(report.json()["reconnects"], report.tally.reconnects);
}

#[tokio::test]
async fn call_loops_stop_when_the_server_closes_connections_before_answering() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // An HTTP/2 server that closes each connection at its first call.
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut connection = h2::server::handshake(tcp).await.unwrap();
                let _ = connection.accept().await;
            });
        }
    });
    let settings =
        settings(&url, &["--duration", "1s", "--warmup", "0s", "--connections", "2", "--concurrency", "4"]);
    let report = runner::run(&settings).await.expect("bench ran");
    // Each loop fails once and stops: no connection served a call, so none is
    // redialled, and no loop spins on a closed connection.
    assert_eq!((report.tally.loops_stopped, report.tally.reconnects), (4, 0));
    assert_eq!(report.tally.errors.iter().collect::<Vec<_>>(), vec![(&"UNAVAILABLE", &4)]);
    assert!(report.table().contains(
        "  stopped     4 of 4 call loops: the server closed their connection and served no call on a new one\n"
    ));
    assert_eq!(report.json()["loops_stopped"], 4);
}

/// A server that closes each connection before its SETTINGS (a peer at its
/// limit of open files did) is a server that closes connections: the calls
/// fail on them and their loops stop, the run goes on to its report.
#[tokio::test]
async fn call_loops_stop_when_the_server_closes_connections_before_its_settings() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            drop(tcp);
        }
    });
    let settings =
        settings(&url, &["--duration", "1s", "--warmup", "0s", "--connections", "2", "--concurrency", "4"]);
    let report = runner::run(&settings).await.expect("bench ran");
    assert_eq!((report.tally.loops_stopped, report.tally.reconnects), (4, 0));
    assert_eq!(report.tally.errors.iter().collect::<Vec<_>>(), vec![(&"UNAVAILABLE", &4)]);
}

#[tokio::test]
async fn every_protocol_counts_every_call_kind_and_its_failures() {
    let token = std::env::temp_dir().join(format!("bench-protocols-token-{}", std::process::id()));
    std::fs::write(&token, "s3cret\n").unwrap();
    let server = TestServer::start_with_args(&[
        "--max-stream-count",
        "5",
        "--auth-token-file",
        token.to_str().unwrap(),
    ])
    .await;
    for protocol in ["grpc", "grpcweb", "connect"] {
        // `--protocol P --token s3cret` then `args`.
        let run = |args: &[&'static str]| {
            let all: Vec<&str> = ["--protocol", protocol, "--token", "s3cret"]
                .into_iter()
                .chain(args.iter().copied())
                .collect();
            let settings = settings(&server.url(), &all);
            async move { runner::run(&settings).await.expect("bench ran") }
        };
        let report = run(&["--requests", "6"]).await;
        assert_eq!((report.tally.ok, report.tally.messages, report.tally.failed()), (6, 6, 0), "{protocol}");
        for (rpc, count, messages) in
            [("server-stream", "3", 18), ("client-stream", "3", 18), ("bidi", "4", 24)]
        {
            let report = run(&["--requests", "6", "--rpc", rpc, "--count", count]).await;
            let outcome = (report.tally.ok, report.tally.messages, report.tally.failed());
            assert_eq!(outcome, (6, messages, 0), "{protocol} {rpc}");
        }
        // A stream refused by the handler, and a unary call refused before it (no token).
        let report = run(&["--requests", "4", "--rpc", "server-stream", "--count", "6"]).await;
        assert_eq!(
            report.tally.errors.iter().collect::<Vec<_>>(),
            vec![(&"INVALID_ARGUMENT", &4)],
            "{protocol}"
        );
        let report = bench(&server, &["--protocol", protocol, "--requests", "3"]).await;
        assert_eq!(
            report.tally.errors.iter().collect::<Vec<_>>(),
            vec![(&"UNAUTHENTICATED", &3)],
            "{protocol}"
        );
    }
    let _ = std::fs::remove_file(token);
}

/// `connect-client --addr {url} {global...} bench {args}` run to the end,
/// with what it printed (stdout) and its outcome.
async fn bench_cli(url: &str, global: &[&str], args: &[&str]) -> (String, Result<(), ClientError>) {
    let mut argv = vec!["connect-client", "--addr", url];
    argv.extend_from_slice(global);
    argv.push("bench");
    argv.extend_from_slice(args);
    let output = Output::capture();
    let settings = Cli::try_parse_from(argv).expect("valid flags").settings().expect("usable flags");
    let outcome = connect_client::commands::run(settings, &output).await;
    (output.stdout(), outcome)
}

/// The proto of ConnectService, for `--proto`.
fn connect_proto_file() -> String {
    format!("{}/../proto/connect.proto", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn call_runs_a_unary_method_found_through_reflection() {
    let server = TestServer::start().await;
    let args = ["--call", "grpc.health.v1.Health/Check", "-d", r#"{"service":""}"#, "--requests", "20"];
    let report = bench(&server, &[&args[..], &["--concurrency", "4"]].concat()).await;
    assert_eq!((report.tally.ok, report.tally.failed(), report.tally.messages), (20, 0, 20));
    assert_eq!(report.method, "grpc.health.v1.Health/Check");
    assert_eq!(report.json()["rpc"], "grpc.health.v1.Health/Check");
}

#[tokio::test]
async fn call_runs_a_server_stream_found_through_a_proto_file() {
    let server = TestServer::start().await;
    let proto = connect_proto_file();
    let mut argv = vec!["connect-client", "--addr"];
    let url = server.url();
    argv.extend([url.as_str(), "--proto", &proto, "bench", "--call", "ConnectService/ServerStreamRPC"]);
    argv.extend(["-d", r#"{"requestData":"x","count":3}"#, "--requests", "5", "--concurrency", "2"]);
    let Action::Bench(settings) = Cli::parse_from(argv).settings().expect("usable").action else {
        panic!("not bench")
    };
    let report = runner::run(&settings).await.expect("bench ran");
    assert_eq!((report.tally.ok, report.tally.messages), (5, 15));
    assert_eq!(report.method, "ConnectService/ServerStreamRPC");
    let stats = server.stats.snapshot();
    assert_eq!((stats.server_stream, stats.unary), (5, 0));
}

#[tokio::test]
async fn call_sends_a_json_array_inline_or_from_a_file_or_repeats_one_object() {
    let server = TestServer::start().await;
    let array = r#"[{"requestData":"a"},{"requestData":"b"}]"#;
    let report =
        bench(&server, &["--call", "ConnectService/ClientStreamRPC", "-d", array, "--requests", "4"]).await;
    assert_eq!((report.tally.ok, report.tally.messages), (4, 8));
    let file = std::env::temp_dir().join(format!("bench-requests-{}.json", std::process::id()));
    std::fs::write(&file, array).expect("write the requests");
    let at_file = format!("@{}", file.display());
    let args = ["--call", "ConnectService/ClientStreamRPC", "-d", &at_file, "--requests", "3"];
    let report = bench(&server, &args).await;
    let _ = std::fs::remove_file(&file);
    assert_eq!((report.tally.ok, report.tally.messages), (3, 6));
    let one = r#"{"requestData":"a"}"#;
    let args = ["--call", "ConnectService/BidiStreamRPC", "-d", one, "--count", "3", "--requests", "2"];
    let report = bench(&server, &args).await;
    assert_eq!((report.tally.ok, report.tally.messages), (2, 6));
    let stats = server.stats.snapshot();
    assert_eq!((stats.client_stream, stats.bidi), (7, 2));
}

#[tokio::test]
async fn call_speaks_every_protocol() {
    let server = TestServer::start().await;
    for protocol in ["grpc", "grpcweb", "connect"] {
        let args = ["--call", "ConnectService/UnaryRPC", "-d", r#"{"requestData":"p"}"#, "--requests", "3"];
        let (stdout, outcome) =
            bench_cli(&server.url(), &["--protocol", protocol], &[&args[..], &["--json"]].concat()).await;
        outcome.expect("every call succeeded");
        let json: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
        assert_eq!(
            (json["ok"].as_u64(), json["rpc"].as_str()),
            (Some(3), Some("ConnectService/UnaryRPC")),
            "{protocol}"
        );
        let stream =
            ["--call", "ConnectService/ServerStreamRPC", "-d", r#"{"count":4}"#, "--requests", "2", "--json"];
        let (stdout, outcome) = bench_cli(&server.url(), &["--protocol", protocol], &stream).await;
        outcome.expect("every call succeeded");
        let json: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
        assert_eq!((json["ok"].as_u64(), json["messages"].as_u64()), (Some(2), Some(8)), "{protocol}");
    }
    let stats = server.stats.snapshot();
    assert_eq!((stats.unary, stats.server_stream), (9, 6));
}

#[tokio::test]
async fn call_counts_failures_by_code_and_exits_1() {
    let server = TestServer::start().await;
    let args = ["--call", "grpc.health.v1.Health/Check", "-d", r#"{"service":"nope"}"#, "--requests", "6"];
    let (stdout, outcome) = bench_cli(&server.url(), &[], &[&args[..], &["--output", "json"]].concat()).await;
    let error = outcome.expect_err("calls failed");
    assert!(matches!(error, ClientError::CallsFailed(6)), "{error:?}");
    assert_eq!(error.exit_code(), std::process::ExitCode::from(1));
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_eq!(json["errors"], serde_json::json!({ "NOT_FOUND": 6 }));
    assert_eq!(json["ok"], 0);
}

#[tokio::test]
async fn call_names_an_unknown_method_and_bad_json() {
    let server = TestServer::start().await;
    let unknown =
        runner::run(&settings(&server.url(), &["--call", "ConnectService/Nope"])).await.unwrap_err();
    assert_eq!(unknown.to_string(), r#"service "ConnectService" has no method "Nope""#);
    let bad = ["--call", "ConnectService/UnaryRPC", "-d", r#"{"requestData": 5"#];
    let error = runner::run(&settings(&server.url(), &bad)).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid JSON for RequestMessage: invalid type: integer `5`, expected a string at line 1 column 17"
    );
    assert_eq!(server.stats.snapshot().unary, 0);
}

#[tokio::test]
async fn call_over_mtls() {
    let certs = TestCerts::generate();
    let server = TestServer::start_tls(&certs, true, &[]).await;
    let (ca, cert, key) = (path(&certs.ca), path(&certs.client_cert), path(&certs.client_key));
    let global = ["--ca", ca.as_str(), "--cert", cert.as_str(), "--key", key.as_str()];
    let args = ["--call", "grpc.health.v1.Health/Check", "--requests", "5", "--output", "csv"];
    let (stdout, outcome) = bench_cli(&server.https_url(), &global, &args).await;
    outcome.expect("every call succeeded");
    let row: Vec<&str> = stdout.lines().nth(1).expect("one row").split(',').collect();
    assert_eq!((row[0], row[1], row[4], row[5], row[10]), ("1", "", "5", "0", ""));
}

#[tokio::test]
async fn a_rate_step_schedule_reports_one_csv_row_per_step() {
    let server = TestServer::start().await;
    // Rates whose intervals are whole nanoseconds, so the number of calls due is exact.
    let args = ["--rate-step", "100:150:400/200ms", "--concurrency", "2", "--output", "csv"];
    let (stdout, outcome) = bench_cli(&server.url(), &[], &args).await;
    outcome.expect("every call succeeded");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        "step,offered_rate,concurrency,elapsed_s,ok,failed,calls_per_sec,p50_us,p99_us,p99.9_us,errors"
    );
    assert_eq!(lines.len(), 4, "{stdout}");
    let cells: Vec<Vec<&str>> = lines[1..].iter().map(|line| line.split(',').collect()).collect();
    let columns = |i: usize| cells.iter().map(|row| row[i]).collect::<Vec<_>>();
    assert_eq!(columns(0), ["1", "2", "3"]);
    assert_eq!(columns(1), ["100", "250", "400"]);
    assert_eq!(columns(2), ["2", "2", "2"]);
    // Every call due within a step's 200 ms is made: rate x 0.2 s.
    assert_eq!(columns(4), ["20", "50", "80"]);
    assert_eq!(columns(5), ["0", "0", "0"]);
    assert_eq!(columns(10), ["", "", ""]);
    assert_eq!(server.stats.snapshot().unary, 150);
}

#[tokio::test]
async fn ramps_of_rate_and_of_concurrency_report_their_steps_in_json() {
    let server = TestServer::start().await;
    let args =
        ["--rate-ramp", "100:400/300ms", "--ramp-steps", "3", "--concurrency", "2", "--output", "json"];
    let (stdout, outcome) = bench_cli(&server.url(), &[], &args).await;
    outcome.expect("every call succeeded");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
    let steps = json["steps"].as_array().expect("steps");
    let offered: Vec<_> = steps.iter().map(|step| step["offered_rate"].as_f64()).collect();
    assert_eq!(offered, [Some(100.0), Some(250.0), Some(400.0)]);
    let numbers: Vec<_> = steps.iter().map(|step| step["step"].as_u64()).collect();
    assert_eq!(numbers, [Some(1), Some(2), Some(3)]);
    // 100 ms each: 10, 25 and 40 calls.
    let ok: Vec<_> = steps.iter().map(|step| step["ok"].as_u64()).collect();
    assert_eq!(ok, [Some(10), Some(25), Some(40)]);

    let args = ["--concurrency-step", "1:1:3/100ms", "--json"];
    let (stdout, outcome) = bench_cli(&server.url(), &[], &args).await;
    outcome.expect("every call succeeded");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
    let steps = json["steps"].as_array().expect("steps");
    let concurrency: Vec<_> = steps.iter().map(|step| step["concurrency"].as_u64()).collect();
    assert_eq!(concurrency, [Some(1), Some(2), Some(3)]);
    assert!(steps.iter().all(|step| step["offered_rate"].is_null() && step["failed"] == 0));
}

#[test]
fn schedules_that_make_no_sense_are_usage_errors() {
    let parse = |args: &[&str]| {
        let argv = [&["connect-client", "bench"][..], args].concat();
        Cli::try_parse_from(argv)
    };
    for bad in
        [&["--rate-step", "100:0:500/1s"][..], &["--rate-step", "500:100:100/1s"], &["--rate-ramp", "1:5"]]
    {
        let error = parse(bad).expect_err("refused");
        assert_eq!(error.exit_code(), 2, "{bad:?}");
    }
    let both = parse(&["--rate-step", "1:1:2/1s", "--concurrency-ramp", "1:4/1s"]).expect_err("one schedule");
    assert_eq!(both.kind(), clap::error::ErrorKind::ArgumentConflict);
    let with_rate = parse(&["--rate-step", "1:1:2/1s", "--rate", "5"]).expect_err("rate or its schedule");
    assert_eq!(with_rate.kind(), clap::error::ErrorKind::ArgumentConflict);
    let zero = parse(&["--concurrency-step", "0:1:2/1s"]).expect("parses").settings().expect_err("refused");
    assert_eq!(zero.to_string(), "error: a step's concurrency would be 0; it must be a whole number from 1");
    assert_eq!(zero.exit_code(), std::process::ExitCode::from(2));
}
