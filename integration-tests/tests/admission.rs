//! Admission control: the server-wide budget of calls in flight
//! (`--max-calls-in-flight`), a connection's fair share of it, and the
//! refusal every protocol gets past it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use connect_proto::{ConnectServiceClient, RequestMessage, ResponseMessage};
use http::{StatusCode, Version};
use integration_tests::{
    PROMPTLY, TestServer, request,
    scrape::sample,
    wire::web::{post, send},
};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Streaming, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const OVERLOADED: &str = "the server is overloaded: 8 calls in flight; retry later";
const OVER_SHARE: &str = "this connection holds its share of the server's calls in flight; retry later";

/// A bidi stream held open: its first reply has arrived (so the call was
/// admitted), and it ends when the client says so.
struct Held {
    requests: mpsc::Sender<RequestMessage>,
    replies: Streaming<ResponseMessage>,
}

async fn open_stream(client: &mut ConnectServiceClient<Channel>) -> Held {
    let (requests, rx) = mpsc::channel(1);
    requests.send(request("held")).await.unwrap();
    let mut replies = client.bidi_stream_rpc(ReceiverStream::new(rx)).await.expect("admitted").into_inner();
    let first = replies.message().await.expect("first reply").expect("a reply");
    assert_eq!(first.response_data, "Hello, held");
    Held { requests, replies }
}

impl Held {
    /// Half-closes and expects the call to end with OK.
    async fn finish(mut self) {
        drop(self.requests);
        assert!(self.replies.message().await.expect("ends with OK").is_none());
    }
}

/// Separate connections: a channel each.
async fn connection(server: &TestServer) -> ConnectServiceClient<Channel> {
    ConnectServiceClient::new(server.channel().await)
}

fn refused(status: &tonic::Status, message: &str) {
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(status.message(), message);
    assert_eq!(status.metadata().get("grpc-retry-pushback-ms").map(|v| v.to_str().unwrap()), Some("250"));
}

fn refused_series(reason: &str) -> String {
    format!("connect_calls_refused_total{{reason=\"{reason}\"}}")
}

#[tokio::test]
async fn past_the_budget_calls_are_refused_and_a_connection_gets_its_share() {
    let server =
        TestServer::start_with_args(&["--max-calls-in-flight", "8", "--metrics-addr", "127.0.0.1:0"]).await;
    let metrics = server.metrics_addr.unwrap();
    let mut greedy = connection(&server).await;
    let mut polite = connection(&server).await;

    // Alone, a connection may take more than half the budget.
    let mut held = Vec::new();
    for _ in 0..6 {
        held.push(open_stream(&mut greedy).await);
    }
    held.push(open_stream(&mut polite).await);
    // Two connections hold calls and 7 of 8 are taken: a share is 4, and the greedy one has 6.
    refused(&greedy.unary_rpc(request("more")).await.unwrap_err(), OVER_SHARE);
    assert_eq!(sample(metrics, &refused_series("connection_share")).await, 1.0);
    // The polite one is under its share: its calls go on as usual.
    let answer = polite.unary_rpc(request("fine")).await.unwrap().into_inner();
    assert_eq!(answer.response_data, "Hello, fine");
    held.push(open_stream(&mut polite).await);

    // All 8 taken: anyone's new call is refused, on a new connection too.
    let mut newcomer = connection(&server).await;
    refused(&newcomer.unary_rpc(request("late")).await.unwrap_err(), OVERLOADED);
    assert_eq!(sample(metrics, &refused_series("overload")).await, 1.0);
    // Health checks are never refused: a busy server is not a dead one.
    let mut health = HealthClient::new(server.channel().await);
    let check = health.check(HealthCheckRequest { service: String::new() }).await.unwrap();
    assert_eq!(check.get_ref().status(), ServingStatus::Serving);
    // The admitted calls were not disturbed, and their places come back once they end.
    for call in held {
        call.finish().await;
    }
    let deadline = Instant::now() + PROMPTLY;
    loop {
        match newcomer.unary_rpc(request("again")).await {
            Ok(answer) => {
                assert_eq!(answer.into_inner().response_data, "Hello, again");
                break;
            }
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted);
                assert!(Instant::now() < deadline, "the budget never came back");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

#[tokio::test]
async fn the_web_protocols_get_the_refusal_in_their_own_terms() {
    let server = TestServer::start_with_args(&["--max-calls-in-flight", "8"]).await;
    let mut client = connection(&server).await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(open_stream(&mut client).await);
    }
    let json = ("content-type", "application/json");
    for version in [Version::HTTP_11, Version::HTTP_2] {
        let request = post("/ConnectService/UnaryRPC", &[json]);
        let response =
            send(server.addr, version, request, Bytes::from_static(br#"{"requestData":"web"}"#)).await;
        assert_eq!(response.status, StatusCode::TOO_MANY_REQUESTS, "{version:?}");
        assert_eq!(
            response.json(),
            json!({"code": "resource_exhausted", "message": OVERLOADED}),
            "{version:?}"
        );
    }
    let request = post("/ConnectService/UnaryRPC", &[("content-type", "application/grpc-web+proto")]);
    let response = send(server.addr, Version::HTTP_11, request, Bytes::new()).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.header("grpc-status"), Some("8"));
    assert_eq!(response.header("grpc-retry-pushback-ms"), Some("250"));
}
