//! `connect-client bench`: every call counted, messages counted per RPC kind,
//! failures counted by status code and turned into exit code 1.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use clap::Parser;
use connect_client::{
    Cli, ClientError,
    bench::{BenchSettings, Report, runner},
    commands::Action,
};
use integration_tests::{PROMPTLY, TestServer};
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
async fn a_call_loop_whose_connection_the_server_closed_stops_instead_of_spinning() {
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
    assert_eq!(report.tally.loops_stopped, 4);
    // Each loop fails once, when its connection goes, and then stops: not the
    // millions of instant failures a loop on a closed connection would count.
    assert_eq!(report.tally.failed(), 4, "{:?}", report.tally.errors);
    assert_eq!(report.tally.errors.get("UNAVAILABLE"), Some(&4));
    assert!(report.table().contains("  stopped     4 of 4 call loops: the server closed their connection\n"));
    assert_eq!(report.json()["loops_stopped"], 4);
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
