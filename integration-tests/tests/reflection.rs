//! Reflection v1 and v1alpha: list the services and describe `ConnectService`
//! without the proto file, as grpcurl and friends do.

use clap::Parser;
use connect_client::{Cli, call, commands::probe};
use integration_tests::TestServer;
use prost::Message as _;
use prost_types::FileDescriptorProto;
use tonic_reflection::pb::{v1, v1alpha};

const V1_SERVICES: [&str; 3] =
    ["ConnectService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"];

async fn v1_ask(
    server: &TestServer,
    request: v1::server_reflection_request::MessageRequest,
) -> v1::server_reflection_response::MessageResponse {
    let mut client = v1::server_reflection_client::ServerReflectionClient::new(server.channel().await);
    let request = v1::ServerReflectionRequest { host: String::new(), message_request: Some(request) };
    let mut responses =
        client.server_reflection_info(futures::stream::iter([request])).await.unwrap().into_inner();
    responses.message().await.unwrap().unwrap().message_response.unwrap()
}

#[tokio::test]
async fn v1_lists_services() {
    let server = TestServer::start().await;
    let response =
        v1_ask(&server, v1::server_reflection_request::MessageRequest::ListServices(String::new())).await;
    let v1::server_reflection_response::MessageResponse::ListServicesResponse(list) = response else {
        panic!("not a service list: {response:?}");
    };
    let mut names: Vec<_> = list.service.into_iter().map(|service| service.name).collect();
    names.sort();
    assert_eq!(names, V1_SERVICES);
}

#[tokio::test]
async fn v1alpha_lists_services() {
    use v1alpha::{server_reflection_request::MessageRequest, server_reflection_response::MessageResponse};
    let server = TestServer::start().await;
    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(server.channel().await);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses =
        client.server_reflection_info(futures::stream::iter([request])).await.unwrap().into_inner();
    let response = responses.message().await.unwrap().unwrap().message_response.unwrap();
    let MessageResponse::ListServicesResponse(list) = response else {
        panic!("not a service list: {response:?}");
    };
    let mut names: Vec<_> = list.service.into_iter().map(|service| service.name).collect();
    names.sort();
    assert_eq!(
        names,
        ["ConnectService", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"]
    );
}

#[tokio::test]
async fn v1_describes_connect_service_methods() {
    let server = TestServer::start().await;
    let response = v1_ask(
        &server,
        v1::server_reflection_request::MessageRequest::FileContainingSymbol("ConnectService".into()),
    )
    .await;
    let v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files) = response else {
        panic!("not a file descriptor: {response:?}");
    };
    let file = FileDescriptorProto::decode(files.file_descriptor_proto[0].as_slice()).unwrap();
    let service =
        file.service.iter().find(|service| service.name() == "ConnectService").expect("ConnectService");
    let methods: Vec<_> = service.method.iter().map(|method| method.name()).collect();
    assert_eq!(methods, ["UnaryRPC", "ServerStreamRPC", "ClientStreamRPC", "BidiStreamRPC"]);
}

#[tokio::test]
async fn list_command_lists_services() {
    let server = TestServer::start().await;
    let cli = Cli::parse_from(["connect-client", "--addr", &server.url(), "list"]);
    connect_client::run(cli).await.expect("list command");
    let mut names = probe::list_services(
        call::call_channel(server.channel().await, &call::CallOptions::default()).unwrap(),
        None,
    )
    .await
    .unwrap();
    names.sort();
    assert_eq!(names, V1_SERVICES);
}
