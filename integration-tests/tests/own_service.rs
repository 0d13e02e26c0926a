//! A user's own service (the `greeter` example) on the builder: it gets
//! every protocol, JSON from its own descriptors, reflection, health, the
//! token check and per-method metrics with no code of its own; a service
//! without descriptors, or added twice, fails `build()` naming it.

use bytes::Bytes;
use connect_server::{ConnectServer, Error, ServiceOptions};
use greeter::{
    FILE_DESCRIPTOR_SET, Greeter, GreeterServer,
    pb::{SayHelloRequest, greeter_client::GreeterClient},
};
use http::{StatusCode, Version};
use integration_tests::{
    TestServer,
    scrape::sample,
    wire::web::{envelopes, post, send},
};
use serde_json::json;
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1;

const SAY_HELLO: &str = "/greeter.v1.Greeter/SayHello";

/// The greeter example's server with the test defaults and `args`.
async fn greeter(args: &[&str]) -> TestServer {
    let server = ConnectServer::builder(TestServer::config(args))
        .add_service(GreeterServer::new(Greeter))
        .file_descriptor_set(FILE_DESCRIPTOR_SET)
        .expect("valid descriptors")
        .build()
        .expect("a valid server");
    TestServer::start_built(server).await
}

#[tokio::test]
async fn grpc_calls_reach_the_service() {
    let server = greeter(&[]).await;
    let mut client = GreeterClient::new(server.channel().await);
    let request = SayHelloRequest { name: "Ada".into(), times: 0 };
    let reply = client.say_hello(request).await.unwrap();
    assert_eq!(reply.get_ref().message, "Hello, Ada");
    assert!(reply.metadata().get("x-request-id").is_some());
    assert!(reply.metadata().get("x-served-by").is_some());
}

#[tokio::test]
async fn connect_json_unary_and_stream_over_http1() {
    let server = greeter(&[]).await;
    let request = post(SAY_HELLO, &[("content-type", "application/json")]);
    let response =
        send(server.addr, Version::HTTP_11, request, Bytes::from_static(br#"{"name":"Ada"}"#)).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json(), json!({"message": "Hello, Ada"}));

    let request = post("/greeter.v1.Greeter/SayHelloStream", &[("content-type", "application/connect+json")]);
    let body = integration_tests::wire::web::envelope(0, br#"{"name":"Ada","times":2}"#);
    let response = send(server.addr, Version::HTTP_11, request, body.into()).await;
    assert_eq!(response.status, StatusCode::OK);
    let messages: Vec<(u8, serde_json::Value)> = envelopes(&response.body)
        .into_iter()
        .map(|(flags, payload)| (flags, serde_json::from_slice(&payload).unwrap()))
        .collect();
    assert_eq!(
        messages,
        [
            (0, json!({"message": "Hello, Ada (1/2)"})),
            (0, json!({"message": "Hello, Ada (2/2)"})),
            (2, json!({})),
        ]
    );
}

#[tokio::test]
async fn an_unknown_method_of_the_service_is_unimplemented_in_connect_json() {
    let server = greeter(&[]).await;
    let request = post("/greeter.v1.Greeter/SayGoodbye", &[("content-type", "application/json")]);
    let response = send(server.addr, Version::HTTP_11, request, Bytes::from_static(b"{}")).await;
    assert_eq!(response.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(
        response.json(),
        json!({"code": "unimplemented", "message": "unknown method SayGoodbye for service greeter.v1.Greeter"})
    );
}

#[tokio::test]
async fn reflection_lists_it_and_health_reports_it() {
    let server = greeter(&[]).await;
    let mut reflection = v1::server_reflection_client::ServerReflectionClient::new(server.channel().await);
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut responses =
        reflection.server_reflection_info(futures::stream::iter([request])).await.unwrap().into_inner();
    let response = responses.message().await.unwrap().unwrap().message_response.unwrap();
    let v1::server_reflection_response::MessageResponse::ListServicesResponse(list) = response else {
        panic!("not a service list: {response:?}");
    };
    let names: Vec<_> = list.service.into_iter().map(|service| service.name).collect();
    assert_eq!(names, ["greeter.v1.Greeter", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"]);

    let mut health = HealthClient::new(server.channel().await);
    for service in ["", "greeter.v1.Greeter"] {
        let request = HealthCheckRequest { service: service.into() };
        let status = health.check(request).await.unwrap().into_inner().status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let unknown = health.check(HealthCheckRequest { service: "ConnectService".into() }).await.unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

#[tokio::test]
async fn its_calls_need_the_token_unless_opened() {
    let token = std::env::temp_dir().join(format!("greeter-token-{}", std::process::id()));
    std::fs::write(&token, "s3cret\n").unwrap();
    let server = greeter(&["--auth-token-file", token.to_str().unwrap()]).await;
    let mut client = GreeterClient::new(server.channel().await);
    let refused = client.say_hello(SayHelloRequest::default()).await.unwrap_err();
    assert_eq!((refused.code(), refused.message()), (Code::Unauthenticated, "missing bearer token"));

    let open = ConnectServer::builder(TestServer::config(&["--auth-token-file", token.to_str().unwrap()]))
        .add_service_with(GreeterServer::new(Greeter), ServiceOptions::new().without_auth())
        .file_descriptor_set(FILE_DESCRIPTOR_SET)
        .unwrap()
        .build()
        .unwrap();
    let open = TestServer::start_built(open).await;
    let mut client = GreeterClient::new(open.channel().await);
    assert_eq!(client.say_hello(SayHelloRequest::default()).await.unwrap().get_ref().message, "Hello, World");
    std::fs::remove_file(token).unwrap();
}

#[tokio::test]
async fn its_methods_have_their_prometheus_series() {
    let server = greeter(&["--metrics-addr", "127.0.0.1:0"]).await;
    let metrics = server.metrics_addr.unwrap();
    let series = |code: &str| {
        format!(
            "grpc_server_handled_total{{grpc_code=\"{code}\",grpc_method=\"SayHello\",\
             grpc_service=\"greeter.v1.Greeter\",grpc_type=\"unary\"}}"
        )
    };
    assert_eq!(sample(metrics, &series("OK")).await, 0.0);
    let mut client = GreeterClient::new(server.channel().await);
    client.say_hello(SayHelloRequest::default()).await.unwrap();
    assert_eq!(sample(metrics, &series("OK")).await, 1.0);
    let streams = "grpc_server_started_total{grpc_method=\"SayHelloStream\",\
                   grpc_service=\"greeter.v1.Greeter\",grpc_type=\"server_stream\"}";
    assert_eq!(sample(metrics, streams).await, 0.0);
}

#[test]
fn a_service_without_descriptors_fails_build_naming_it() {
    let error = ConnectServer::builder(TestServer::config(&[]))
        .add_service(GreeterServer::new(Greeter))
        .build()
        .unwrap_err();
    assert!(matches!(error, Error::NoDescriptors(ref name) if name == "greeter.v1.Greeter"), "{error:?}");
    assert_eq!(
        error.to_string(),
        "service greeter.v1.Greeter has no descriptors: add the FileDescriptorSet that defines it \
         with `file_descriptor_set`"
    );
}

#[test]
fn a_service_added_twice_or_bad_descriptors_fail_clearly() {
    let twice = ConnectServer::builder(TestServer::config(&[]))
        .add_service(GreeterServer::new(Greeter))
        .add_service(GreeterServer::new(Greeter))
        .file_descriptor_set(FILE_DESCRIPTOR_SET)
        .unwrap()
        .build()
        .unwrap_err();
    assert_eq!(twice.to_string(), "service greeter.v1.Greeter is added twice");
    let health = tonic_health::server::health_reporter().1;
    let standard = ConnectServer::builder(TestServer::config(&[])).add_service(health).build().unwrap_err();
    assert_eq!(standard.to_string(), "service grpc.health.v1.Health is added twice");
    let garbage =
        ConnectServer::builder(TestServer::config(&[])).file_descriptor_set(b"\xff\xff").unwrap_err();
    assert!(garbage.to_string().starts_with("invalid file descriptor set: "), "{garbage}");
}

/// gRPC's interop service, as `interop-server` serves it: Connect JSON, with
/// no descriptors of the server's own.
#[tokio::test]
async fn the_interop_test_service_answers_connect_json() {
    let builder = grpc_testing::server::add_to(ConnectServer::builder(TestServer::config(&[]))).unwrap();
    let server = TestServer::start_built(builder.build().unwrap()).await;
    let request = post("/grpc.testing.TestService/EmptyCall", &[("content-type", "application/json")]);
    let response = send(server.addr, Version::HTTP_11, request, Bytes::from_static(b"{}")).await;
    assert_eq!((response.status, response.json()), (StatusCode::OK, json!({})));
    let request = post("/grpc.testing.TestService/UnaryCall", &[("content-type", "application/json")]);
    let body = Bytes::from_static(br#"{"responseSize":3}"#);
    let response = send(server.addr, Version::HTTP_11, request, body).await;
    assert_eq!(response.json(), json!({"payload": {"body": "AAAA"}}));
}

/// A greeter whose `SayHello` panics for the name "panic".
#[derive(Debug, Clone, Copy)]
struct Panicky;

#[tonic::async_trait]
impl greeter::pb::greeter_server::Greeter for Panicky {
    async fn say_hello(
        &self,
        request: tonic::Request<SayHelloRequest>,
    ) -> Result<tonic::Response<greeter::pb::SayHelloResponse>, tonic::Status> {
        assert_ne!(request.get_ref().name, "panic", "asked to panic");
        greeter::pb::greeter_server::Greeter::say_hello(&Greeter, request).await
    }

    type SayHelloStreamStream = <Greeter as greeter::pb::greeter_server::Greeter>::SayHelloStreamStream;

    async fn say_hello_stream(
        &self,
        request: tonic::Request<SayHelloRequest>,
    ) -> Result<tonic::Response<Self::SayHelloStreamStream>, tonic::Status> {
        greeter::pb::greeter_server::Greeter::say_hello_stream(&Greeter, request).await
    }
}

#[tokio::test]
async fn a_panicking_handler_ends_its_call_with_internal_and_the_connection_goes_on() {
    let server = ConnectServer::builder(TestServer::config(&[]))
        .add_service(GreeterServer::new(Panicky))
        .file_descriptor_set(FILE_DESCRIPTOR_SET)
        .unwrap()
        .build()
        .unwrap();
    let server = TestServer::start_built(server).await;
    let mut client = GreeterClient::new(server.channel().await);
    // A stream open on the same connection while the other call panics.
    let stream = SayHelloRequest { name: "Ada".into(), times: 2 };
    let mut open = client.say_hello_stream(stream).await.unwrap().into_inner();
    let status = client.say_hello(SayHelloRequest { name: "panic".into(), times: 0 }).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::Internal, "the handler panicked"));
    assert_eq!(open.message().await.unwrap().unwrap().message, "Hello, Ada (1/2)");
    assert_eq!(open.message().await.unwrap().unwrap().message, "Hello, Ada (2/2)");
    assert!(open.message().await.unwrap().is_none());
    let after = client.say_hello(SayHelloRequest { name: "Ada".into(), times: 0 }).await.unwrap();
    assert_eq!(after.get_ref().message, "Hello, Ada");
    assert_eq!(server.connections.open(), 1, "the one connection carried every call");
}
