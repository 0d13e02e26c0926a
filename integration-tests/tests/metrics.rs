//! Prometheus metrics: the go-grpc-prometheus server series, after a known
//! sequence of calls, read from the `/metrics` endpoint.

use std::time::{Duration, Instant};

use connect_proto::{RequestMessage, ResponseMessage};
use http::HeaderValue;
use integration_tests::{
    PROMPTLY, TestServer, request,
    scrape::{http_get, samples},
    wire::{CLIENT_STREAM_PATH, UNARY_PATH, client, grpc::request_message},
};
use tokio::{sync::mpsc, time::timeout};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request, client::Grpc, codegen::http::uri::PathAndQuery};

fn labels(method: &str, kind: &str) -> String {
    format!("grpc_method=\"{method}\",grpc_service=\"ConnectService\",grpc_type=\"{kind}\"")
}

fn series(name: &str, method: &str, kind: &str) -> String {
    format!("{name}{{{}}}", labels(method, kind))
}

fn handled(method: &str, kind: &str, code: &str) -> String {
    format!("grpc_server_handled_total{{grpc_code=\"{code}\",{}}}", labels(method, kind))
}

/// Makes the calls whose counts `counts_a_known_sequence_of_calls` checks.
async fn make_known_calls(server: &TestServer) {
    let mut client = server.client().await;

    // UnaryRPC: two OK, one failing with INVALID_ARGUMENT.
    client.unary_rpc(request("a")).await.unwrap();
    client.unary_rpc(request("b")).await.unwrap();
    let mut failing = Request::new(request("no"));
    failing.metadata_mut().insert("x-echo-status", "3".parse().unwrap());
    assert_eq!(client.unary_rpc(failing).await.unwrap_err().code(), Code::InvalidArgument);

    // ServerStreamRPC: one OK call of three responses.
    let message = RequestMessage { request_data: "s".into(), count: 3, interval_ms: 0 };
    let mut stream = client.server_stream_rpc(message).await.unwrap().into_inner();
    while stream.message().await.unwrap().is_some() {}

    // ClientStreamRPC: one OK (two requests), one past its deadline (one request), one cancelled (none).
    let requests = futures::stream::iter([request("1"), request("2")]);
    client.client_stream_rpc(requests).await.unwrap();
    let mut late = client::grpc_request(CLIENT_STREAM_PATH);
    late.headers_mut().insert("grpc-timeout", HeaderValue::from_static("50m"));
    let late = client::call(server.addr, late, request_message(&request("late")), false).await;
    assert_eq!(late.grpc_status(), Some(4));
    let token = CancellationToken::new();
    let mut cancellable = server.cancellable_client(token.clone()).await;
    let (tx, rx) = mpsc::channel::<RequestMessage>(1);
    let call = tokio::spawn(async move { cancellable.client_stream_rpc(ReceiverStream::new(rx)).await });
    timeout(PROMPTLY, server.stats.wait_until(|s| s.client_stream == 3 && s.streams_open == 1))
        .await
        .unwrap();
    token.cancel();
    assert_eq!(call.await.unwrap().unwrap_err().code(), Code::Cancelled);
    drop(tx);

    // BidiStreamRPC: one OK call of two messages each way.
    let requests = futures::stream::iter([request("x"), request("y")]);
    let mut stream = client.bidi_stream_rpc(requests).await.unwrap().into_inner();
    while stream.message().await.unwrap().is_some() {}

    // An unknown method: UNIMPLEMENTED, and no series of its own.
    let mut grpc =
        Grpc::new(tonic::transport::Endpoint::from_shared(server.url()).unwrap().connect().await.unwrap());
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<RequestMessage, ResponseMessage>::default();
    let path = PathAndQuery::from_static("/ConnectService/NoSuchRPC");
    assert_eq!(
        grpc.unary(Request::new(request("?")), path, codec).await.unwrap_err().code(),
        Code::Unimplemented
    );

    // The cancelled call is counted when the server sees the reset; the rest already are.
    timeout(PROMPTLY, server.stats.wait_until(|s| s.cancelled == 1 && s.streams_open == 0)).await.unwrap();
}

#[tokio::test]
async fn counts_a_known_sequence_of_calls() {
    let server = TestServer::start_with_args(&["--metrics-addr", "127.0.0.1:0"]).await;
    let metrics_addr = server.metrics_addr.expect("metrics endpoint started");
    make_known_calls(&server).await;

    let (status_line, body) = http_get(metrics_addr, "/metrics").await;
    assert_eq!(status_line, "HTTP/1.1 200 OK");
    let got = samples(&body);
    let expected = [
        (series("grpc_server_started_total", "UnaryRPC", "unary"), 3.0),
        (handled("UnaryRPC", "unary", "OK"), 2.0),
        (handled("UnaryRPC", "unary", "InvalidArgument"), 1.0),
        (handled("UnaryRPC", "unary", "Unavailable"), 0.0),
        (series("grpc_server_msg_received_total", "UnaryRPC", "unary"), 3.0),
        (series("grpc_server_msg_sent_total", "UnaryRPC", "unary"), 2.0),
        (series("grpc_server_handling_seconds_count", "UnaryRPC", "unary"), 3.0),
        (series("grpc_server_started_total", "ServerStreamRPC", "server_stream"), 1.0),
        (handled("ServerStreamRPC", "server_stream", "OK"), 1.0),
        (series("grpc_server_msg_received_total", "ServerStreamRPC", "server_stream"), 1.0),
        (series("grpc_server_msg_sent_total", "ServerStreamRPC", "server_stream"), 3.0),
        (series("grpc_server_started_total", "ClientStreamRPC", "client_stream"), 3.0),
        (handled("ClientStreamRPC", "client_stream", "OK"), 1.0),
        (handled("ClientStreamRPC", "client_stream", "DeadlineExceeded"), 1.0),
        (handled("ClientStreamRPC", "client_stream", "Canceled"), 1.0),
        (series("grpc_server_msg_received_total", "ClientStreamRPC", "client_stream"), 3.0),
        (series("grpc_server_msg_sent_total", "ClientStreamRPC", "client_stream"), 1.0),
        (series("grpc_server_handling_seconds_count", "ClientStreamRPC", "client_stream"), 3.0),
        (series("grpc_server_started_total", "BidiStreamRPC", "bidi_stream"), 1.0),
        (handled("BidiStreamRPC", "bidi_stream", "OK"), 1.0),
        (series("grpc_server_msg_received_total", "BidiStreamRPC", "bidi_stream"), 2.0),
        (series("grpc_server_msg_sent_total", "BidiStreamRPC", "bidi_stream"), 2.0),
    ];
    for (name, value) in expected {
        assert_eq!(got.get(&name), Some(&value), "{name}");
    }
    // Every handled call, and nothing else: 3 + 1 + 3 + 1.
    let handled_total: f64 = got
        .iter()
        .filter(|(name, _)| name.starts_with("grpc_server_handled_total"))
        .map(|(_, value)| value)
        .sum();
    assert_eq!(handled_total, 8.0);
    assert!(!body.contains("NoSuchRPC"), "unknown methods get no series");
    // Each method served has a series for each of the 17 codes from the start:
    // ConnectService's 4, health's 2, reflection's v1 and v1alpha.
    assert_eq!(got.keys().filter(|name| name.starts_with("grpc_server_handled_total")).count(), 8 * 17);
}

#[tokio::test]
async fn the_endpoint_serves_the_text_format_and_nothing_else() {
    let server = TestServer::start_with_args(&["--metrics-addr", "127.0.0.1:0"]).await;
    let addr = server.metrics_addr.unwrap();
    let (status_line, body) = http_get(addr, "/metrics").await;
    assert_eq!(status_line, "HTTP/1.1 200 OK");
    assert!(body.contains("# TYPE grpc_server_handling_seconds histogram\n"), "{body}");
    assert!(body.contains("# TYPE grpc_server_started_total counter\n"), "{body}");
    // `/` is the playground's page (see tests/playground.rs, also for `--playground off`).
    assert_eq!(http_get(addr, "/nothing").await.0, "HTTP/1.1 404 Not Found");
}

#[tokio::test]
async fn busy_polling_time_is_counted_and_stays_zero_when_off() {
    for (window, spins) in [("0", false), ("50ms", true)] {
        let server =
            TestServer::start_with_args(&["--metrics-addr", "127.0.0.1:0", "--busy-poll", window]).await;
        let metrics_addr = server.metrics_addr.expect("metrics endpoint started");
        let mut client = server.client().await;
        let started = Instant::now();
        // Calls on one connection, one after the other: reads well within 50 ms of each other.
        for name in ["a", "b", "c"] {
            client.unary_rpc(request(name)).await.unwrap();
        }
        let idle =
            async || samples(&http_get(metrics_addr, "/metrics").await.1)["connect_busy_poll_seconds_total"];
        if !spins {
            assert_eq!(idle().await, 0.0, "--busy-poll {window}");
            continue;
        }
        // The spin ends 50 ms after the last read, and is counted then.
        let deadline = Instant::now() + PROMPTLY;
        let mut seconds = idle().await;
        while seconds == 0.0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
            seconds = idle().await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        assert!(seconds > 0.0 && seconds <= elapsed, "{seconds} s counted in {elapsed} s");
    }
}

#[tokio::test]
async fn a_request_that_is_not_grpc_is_not_counted() {
    let server = TestServer::start_with_args(&["--metrics-addr", "127.0.0.1:0"]).await;
    let metrics_addr = server.metrics_addr.expect("metrics endpoint started");
    let mut h2 = client::h2_connect(server.addr).await;
    let mut text = client::grpc_request(UNARY_PATH);
    text.headers_mut().insert("content-type", HeaderValue::from_static("text/plain"));
    let response = client::send(&mut h2, text, request_message(&request("text"))).await;
    assert_eq!(response.status, http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let got = samples(&http_get(metrics_addr, "/metrics").await.1);
    assert_eq!(got.get(&series("grpc_server_started_total", "UnaryRPC", "unary")), Some(&0.0));
    assert_eq!(got.get(&handled("UnaryRPC", "unary", "Unknown")), Some(&0.0));
    assert_eq!(got.get(&handled("UnaryRPC", "unary", "Canceled")), Some(&0.0));
}

#[tokio::test]
async fn metrics_addr_off_serves_nothing() {
    let server = TestServer::start_with_args(&["--metrics-addr", "off"]).await;
    assert_eq!(server.metrics_addr, None);
}

#[tokio::test]
async fn listeners_of_one_server_share_one_registry() {
    // As with one worker runtime per core: one server, several listeners, one endpoint.
    let config = <connect_server::Config as clap::Parser>::parse_from([
        "connect-server",
        "--stats-interval",
        "0",
        "--metrics-addr",
        "127.0.0.1:0",
    ]);
    let server = connect_server::ConnectServer::new(config).unwrap();
    let metrics_addr = server.metrics_addr().expect("metrics on");
    let mut urls = Vec::new();
    let mut listeners = Vec::new();
    for _ in 0..2 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        urls.push(format!("http://{}", listener.local_addr().unwrap()));
        listeners.push(listener);
    }
    tokio::spawn(server.clone().serve(listeners, std::future::pending()));
    server.ready().await;
    for url in &urls {
        let mut client = connect_proto::ConnectServiceClient::connect(url.clone()).await.unwrap();
        client.unary_rpc(request("x")).await.unwrap();
    }
    let got = samples(&http_get(metrics_addr, "/metrics").await.1);
    assert_eq!(got.get(&series("grpc_server_started_total", "UnaryRPC", "unary")), Some(&2.0));
    assert_eq!(got.get(&handled("UnaryRPC", "unary", "OK")), Some(&2.0));
}
