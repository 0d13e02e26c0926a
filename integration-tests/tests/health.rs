//! Health (`grpc.health.v1`): `SERVING` while up, `NOT_SERVING` from the moment
//! a graceful shutdown starts, and the lame duck that keeps serving meanwhile.

use std::time::{Duration, Instant};

use clap::Parser;
use connect_client::{Cli, ClientError};
use integration_tests::{PROMPTLY, TestServer, request};
use tonic::{Code, Streaming, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus,
    health_client::HealthClient,
};

fn ask(service: &str) -> HealthCheckRequest {
    HealthCheckRequest { service: service.to_owned() }
}

async fn check(health: &mut HealthClient<Channel>, service: &str) -> ServingStatus {
    health.check(ask(service)).await.expect("health check").get_ref().status()
}

async fn next_status(watch: &mut Streaming<HealthCheckResponse>) -> ServingStatus {
    let next = tokio::time::timeout(PROMPTLY, watch.message()).await.expect("a status change in time");
    next.expect("watch stream ok").expect("watch stream open").status()
}

/// Runs `connect-client` with `args` against `url` as the binary would.
async fn client_cli(url: &str, args: &[&str]) -> Result<(), ClientError> {
    let mut argv = vec!["connect-client", "--addr", url];
    argv.extend_from_slice(args);
    connect_client::run(Cli::parse_from(argv)).await
}

#[tokio::test]
async fn server_and_connect_service_report_serving() {
    let server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel().await);
    assert_eq!(check(&mut health, "").await, ServingStatus::Serving);
    assert_eq!(check(&mut health, "ConnectService").await, ServingStatus::Serving);
    let unknown = health.check(ask("NoSuchService")).await.unwrap_err();
    assert_eq!((unknown.code(), unknown.message()), (Code::NotFound, "service not registered"));
}

#[tokio::test]
async fn health_turns_not_serving_when_shutdown_starts() {
    let mut server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel().await);
    let mut whole = health.watch(ask("")).await.unwrap().into_inner();
    let mut connect = health.watch(ask("ConnectService")).await.unwrap().into_inner();
    assert_eq!(next_status(&mut whole).await, ServingStatus::Serving);
    assert_eq!(next_status(&mut connect).await, ServingStatus::Serving);

    server.begin_shutdown();
    assert_eq!(next_status(&mut whole).await, ServingStatus::NotServing);
    assert_eq!(next_status(&mut connect).await, ServingStatus::NotServing);
    // Then the server ends the watches itself, so watchers do not hold up the drain.
    for watch in [&mut whole, &mut connect] {
        let end = tokio::time::timeout(PROMPTLY, watch.message()).await.expect("watch ends in time");
        assert!(matches!(end, Ok(None)), "{end:?}");
    }
    tokio::time::timeout(PROMPTLY, server.join()).await.expect("drained in time").expect("clean shutdown");
}

#[tokio::test]
async fn lame_duck_keeps_serving_while_not_serving() {
    let mut server = TestServer::start_with_args(&["--lame-duck", "1500ms"]).await;
    let mut health = HealthClient::new(server.channel().await);
    let mut watch = health.watch(ask("")).await.unwrap().into_inner();
    assert_eq!(next_status(&mut watch).await, ServingStatus::Serving);

    let shutdown_started = Instant::now();
    server.begin_shutdown();
    assert_eq!(next_status(&mut watch).await, ServingStatus::NotServing);
    // Still accepting new connections and serving calls, while saying NOT_SERVING.
    let mut fresh_health = HealthClient::new(server.channel().await);
    assert_eq!(check(&mut fresh_health, "ConnectService").await, ServingStatus::NotServing);
    let mut client = server.client().await;
    let response = client.unary_rpc(request("lame duck")).await.unwrap().into_inner();
    assert_eq!(response.response_data, "Hello, lame duck");
    assert!(shutdown_started.elapsed() < Duration::from_millis(1500), "checked within the lame duck");

    drop((watch, health, fresh_health, client));
    server.join().await.expect("clean shutdown");
    assert!(shutdown_started.elapsed() >= Duration::from_millis(1500), "the drain began after the lame duck");
}

#[tokio::test]
async fn health_command_exits_by_status() {
    let mut server = TestServer::start_with_args(&["--lame-duck", "10s"]).await;
    let url = server.url();
    client_cli(&url, &["health"]).await.expect("SERVING");
    client_cli(&url, &["health", "ConnectService"]).await.expect("SERVING");
    let unknown = client_cli(&url, &["health", "Nope"]).await.unwrap_err();
    assert_eq!(unknown.to_string(), "RPC failed: NOT_FOUND: service not registered");

    let mut health = HealthClient::new(server.channel().await);
    let mut watch = health.watch(ask("")).await.unwrap().into_inner();
    assert_eq!(next_status(&mut watch).await, ServingStatus::Serving);
    server.begin_shutdown();
    assert_eq!(next_status(&mut watch).await, ServingStatus::NotServing);
    let not_serving = client_cli(&url, &["health"]).await.unwrap_err();
    assert_eq!(not_serving.to_string(), "not serving: NOT_SERVING");
    assert_eq!(not_serving.exit_code(), std::process::ExitCode::from(1));
}
