//! OpenTelemetry: a span per call, continued from the client's
//! `traceparent` on every protocol, exported over OTLP/gRPC to a receiver
//! built from the official `opentelemetry-proto` messages; and a collector
//! that is down never slows or fails a call.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{StatusCode, Version};
use integration_tests::{
    PROMPTLY, TestServer, request,
    wire::web::{post, send},
};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, any_value::Value},
    trace::v1::{Span, span::SpanKind, status::StatusCode as SpanStatus},
};
use tokio_stream::wrappers::TcpListenerStream;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// An OTLP/gRPC trace receiver that keeps every span it is sent.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|resource| resource.scope_spans)
            .flat_map(|scope| scope.spans);
        self.spans.lock().unwrap().extend(spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

async fn start_receiver() -> (Receiver, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let receiver = Receiver::default();
    let service = TraceServiceServer::new(receiver.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    (receiver, addr)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn text(value: &str) -> Value {
    Value::StringValue(value.to_owned())
}

/// The events of `span` as `name` or `name TYPE ID`.
fn events(span: &Span) -> Vec<String> {
    span.events
        .iter()
        .map(|event| {
            let get = |key: &str| {
                event.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()).and_then(
                    |AnyValue { value }| match value {
                        Some(Value::StringValue(text)) => Some(text),
                        Some(Value::IntValue(n)) => Some(n.to_string()),
                        _ => None,
                    },
                )
            };
            match (get("rpc.message.type"), get("rpc.message.id")) {
                (Some(kind), Some(id)) => format!("{} {kind} {id}", event.name),
                _ => event.name.clone(),
            }
        })
        .collect()
}

#[tokio::test]
async fn each_protocol_continues_the_clients_trace() {
    let (receiver, collector) = start_receiver().await;
    let endpoint = format!("http://{collector}");
    let server = TestServer::start_with_args(&["--otlp-endpoint", &endpoint]).await;

    // gRPC, with the client's traceparent in the metadata.
    let mut client = server.client().await;
    let mut call = tonic::Request::new(request("traced"));
    call.metadata_mut().insert("traceparent", TRACEPARENT.parse().unwrap());
    call.metadata_mut().insert("tracestate", "vendor=value".parse().unwrap());
    let answer = client.unary_rpc(call).await.unwrap();
    let traceresponse = answer.metadata().get("traceresponse").unwrap().to_str().unwrap().to_owned();
    // Connect over HTTP/1.1, as a browser would send it.
    let json = [("content-type", "application/json"), ("traceparent", TRACEPARENT)];
    let response = send(
        server.addr,
        Version::HTTP_11,
        post("/ConnectService/UnaryRPC", &json),
        Bytes::from_static(br#"{"requestData":"web"}"#),
    )
    .await;
    assert_eq!(response.status, StatusCode::OK);
    // No traceparent: a trace of its own.
    client.unary_rpc(request("alone")).await.unwrap();
    server.stop().await.unwrap();

    let spans = receiver.spans.lock().unwrap().clone();
    assert_eq!(spans.len(), 3, "one span per call, all flushed at shutdown");
    for (span, system) in spans[..2].iter().zip(["grpc", "connectrpc"]) {
        assert_eq!(hex(&span.trace_id), TRACE_ID, "{system}");
        assert_eq!(hex(&span.parent_span_id), PARENT_ID, "{system}");
        assert_eq!(span.name, "ConnectService/UnaryRPC");
        assert_eq!(span.kind, SpanKind::Server as i32);
        assert_eq!(attribute(span, "rpc.system.name"), Some(&text(system)));
        assert_eq!(attribute(span, "rpc.method"), Some(&text("ConnectService/UnaryRPC")));
        assert_eq!(attribute(span, "rpc.response.status_code"), Some(&text("OK")));
        assert_eq!(attribute(span, "network.peer.address"), Some(&text("127.0.0.1")));
        assert!(matches!(attribute(span, "network.peer.port"), Some(Value::IntValue(port)) if *port > 0));
        assert_eq!(events(span), ["rpc.message RECEIVED 1", "half-close", "rpc.message SENT 1"], "{system}");
        assert_eq!(span.status.as_ref().map(|s| s.code), Some(SpanStatus::Unset as i32));
    }
    assert_eq!(spans[0].trace_state, "vendor=value");
    // The response names the span that served it (W3C Trace Context level 2).
    assert_eq!(traceresponse, format!("00-{TRACE_ID}-{}-01", hex(&spans[0].span_id)));
    assert_ne!(hex(&spans[2].trace_id), TRACE_ID);
    assert!(spans[2].parent_span_id.is_empty(), "a root span");
}

#[tokio::test]
async fn a_server_error_marks_the_span() {
    let (receiver, collector) = start_receiver().await;
    let endpoint = format!("http://{collector}");
    let server = TestServer::start_with_args(&["--otlp-endpoint", &endpoint]).await;
    let mut client = server.client().await;
    let long = connect_proto::RequestMessage { request_data: "x".into(), count: 2, interval_ms: 1_000 };
    let mut stream_call = tonic::Request::new(long);
    stream_call.set_timeout(Duration::from_millis(50));
    let mut stream = client.server_stream_rpc(stream_call).await.unwrap().into_inner();
    while stream.message().await.is_ok_and(|message| message.is_some()) {}
    server.stop().await.unwrap();
    let spans = receiver.spans.lock().unwrap().clone();
    assert_eq!(spans.len(), 1);
    let span = &spans[0];
    assert_eq!(span.name, "ConnectService/ServerStreamRPC");
    assert_eq!(attribute(span, "rpc.response.status_code"), Some(&text("DEADLINE_EXCEEDED")));
    assert_eq!(attribute(span, "error.type"), Some(&text("DEADLINE_EXCEEDED")));
    assert_eq!(span.status.as_ref().map(|s| s.code), Some(SpanStatus::Error as i32));
}

#[tokio::test]
async fn a_dead_collector_never_slows_or_fails_a_call() {
    // A port nothing listens on: every export fails.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let endpoint = format!("http://{dead}");
    let untraced = TestServer::start().await;
    let server = TestServer::start_with_args(&["--otlp-endpoint", &endpoint]).await;
    // More spans than the batch queue holds (2,048): the rest are dropped, not waited for.
    for (label, server) in [("untraced", &untraced), ("collector down", &server)] {
        let mut client = server.client().await;
        let started = Instant::now();
        for n in 0..3_000 {
            let answer = tokio::time::timeout(PROMPTLY, client.unary_rpc(request("on")))
                .await
                .unwrap_or_else(|_| panic!("call {n} took over {PROMPTLY:?}"))
                .unwrap();
            assert_eq!(answer.into_inner().response_data, "Hello, on");
        }
        println!("3,000 calls, {label}: {:?}", started.elapsed());
    }
    let stopping = Instant::now();
    server.stop().await.unwrap();
    assert!(stopping.elapsed() < Duration::from_secs(7), "the shutdown waits at most the flush timeout");
}

#[tokio::test]
async fn connect_client_starts_a_trace_the_server_continues() {
    let (receiver, collector) = start_receiver().await;
    let endpoint = format!("http://{collector}");
    let server = TestServer::start_with_args(&["--otlp-endpoint", &endpoint]).await;
    let output = connect_client::Output::capture();
    let cli = <connect_client::Cli as clap::Parser>::parse_from([
        "connect-client",
        "--addr",
        &server.url(),
        "-v",
        "unary",
        "traced",
    ]);
    connect_client::run_with_output(cli, &output).await.unwrap();
    server.stop().await.unwrap();
    let spans = receiver.spans.lock().unwrap().clone();
    assert_eq!(spans.len(), 1);
    let span = &spans[0];
    // The client sent a traceparent of its own: the server's span is its child.
    assert_eq!(span.parent_span_id.len(), 8, "a parent from the client");
    // `-v` shows the server's traceresponse, which names that span.
    let expected = format!("header traceresponse: 00-{}-{}-01", hex(&span.trace_id), hex(&span.span_id));
    assert!(output.stderr().lines().any(|line| line == expected), "{}", output.stderr());
}
