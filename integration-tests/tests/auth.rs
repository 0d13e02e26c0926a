//! Bearer-token auth: `ConnectService` needs the token, health and reflection stay open.

use clap::Parser;
use connect_client::{Cli, ClientError, call};
use connect_proto::RequestMessage;
use integration_tests::{TestServer, request};
use tonic::{Code, Request, Status};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

const TOKEN: &str = "s3cret-token";

fn with_authorization<T>(message: T, value: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", value.parse().unwrap());
    request
}

fn code_and_message(status: &Status) -> (Code, &str) {
    (status.code(), status.message())
}

#[tokio::test]
async fn call_without_token_is_unauthenticated() {
    let server = TestServer::start_with_args(&["--auth-token", TOKEN]).await;
    let mut client = server.client().await;
    let status = client.unary_rpc(request("anon")).await.unwrap_err();
    assert_eq!(code_and_message(&status), (Code::Unauthenticated, "missing bearer token"));
    let stream = RequestMessage { request_data: "anon".into(), count: 2, interval_ms: 0 };
    let status = client.server_stream_rpc(stream).await.unwrap_err();
    assert_eq!(code_and_message(&status), (Code::Unauthenticated, "missing bearer token"));
    assert_eq!(server.stats.snapshot().unary, 0);
}

#[tokio::test]
async fn call_with_wrong_token_is_unauthenticated() {
    let server = TestServer::start_with_args(&["--auth-token", TOKEN]).await;
    let mut client = server.client().await;
    let status = client.unary_rpc(with_authorization(request("x"), "Bearer s3cret-tokeN")).await.unwrap_err();
    assert_eq!(code_and_message(&status), (Code::Unauthenticated, "invalid bearer token"));
    let status = client.unary_rpc(with_authorization(request("x"), TOKEN)).await.unwrap_err();
    assert_eq!(code_and_message(&status), (Code::Unauthenticated, "authorization must be `Bearer <token>`"));
    assert_eq!(server.stats.snapshot().unary, 0);
}

#[tokio::test]
async fn call_with_right_token_succeeds() {
    let server = TestServer::start_with_args(&["--auth-token", TOKEN]).await;
    let mut client = server.client().await;
    let response = client.unary_rpc(with_authorization(request("friend"), &format!("Bearer {TOKEN}"))).await;
    assert_eq!(response.unwrap().into_inner().response_data, "Hello, friend");
    assert_eq!(server.stats.snapshot().unary, 1);
}

#[tokio::test]
async fn token_file_works_like_the_flag() {
    let file = std::env::temp_dir().join(format!("connect-auth-token-{}", std::process::id()));
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let server = TestServer::start_with_args(&["--auth-token-file", file.to_str().unwrap()]).await;
    let mut client = server.client().await;
    let response = client.unary_rpc(with_authorization(request("file"), &format!("Bearer {TOKEN}"))).await;
    assert_eq!(response.unwrap().into_inner().response_data, "Hello, file");
    let status = client.unary_rpc(request("anon")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    std::fs::remove_file(&file).unwrap();
}

#[tokio::test]
async fn health_and_reflection_stay_open() {
    let server = TestServer::start_with_args(&["--auth-token", TOKEN]).await;
    let mut health = HealthClient::new(server.channel().await);
    let status = health.check(HealthCheckRequest { service: "ConnectService".into() }).await.unwrap();
    assert_eq!(status.get_ref().status(), ServingStatus::Serving);
    let services = connect_client::commands::probe::list_services(
        call::call_channel(server.channel().await, &call::CallOptions::default()).unwrap(),
        None,
    )
    .await
    .unwrap();
    assert!(services.contains(&"ConnectService".to_owned()), "{services:?}");
}

#[tokio::test]
async fn client_token_flag_is_sent() {
    let server = TestServer::start_with_args(&["--auth-token", TOKEN]).await;
    let url = server.url();
    let cli = Cli::parse_from(["connect-client", "--addr", &url, "--token", TOKEN, "unary", "cli"]);
    connect_client::run(cli).await.expect("authorized call");
    let cli = Cli::parse_from(["connect-client", "--addr", &url, "--token", "nope", "unary", "cli"]);
    let error = connect_client::run(cli).await.unwrap_err();
    assert_eq!(error.to_string(), "RPC failed: UNAUTHENTICATED: invalid bearer token");
    assert!(matches!(error, ClientError::Rpc(_)));

    let mut client = call::client(
        server.channel().await,
        &call::CallOptions { token: Some(TOKEN.to_owned()), ..Default::default() },
    )
    .unwrap();
    assert_eq!(client.unary_rpc(request("lib")).await.unwrap().into_inner().response_data, "Hello, lib");
}
