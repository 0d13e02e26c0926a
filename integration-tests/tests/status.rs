//! Status: rich `INVALID_ARGUMENT` details, `UNIMPLEMENTED` for unknown
//! paths, and status messages that survive the trip byte for byte.

use connect_proto::{RequestMessage, ResponseMessage};
use integration_tests::{TestServer, request};
use tonic::{Code, Request, Status, client::Grpc, codegen::http::uri::PathAndQuery};
use tonic_prost::ProstCodec;
use tonic_types::StatusExt;

/// The gRPC interop suite's `special_status_message`: whitespace, BMP and non-BMP characters.
const SPECIAL_MESSAGE: &str =
    "\t\ntest with whitespace\r\nand Unicode BMP \u{263A} and non-BMP \u{1F608}\t\n";

fn violations(status: &Status) -> Vec<(String, String)> {
    let details = status.get_details_bad_request().expect("a google.rpc.BadRequest detail");
    details.field_violations.into_iter().map(|v| (v.field, v.description)).collect()
}

#[tokio::test]
async fn invalid_count_carries_a_field_violation() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let message = RequestMessage { request_data: "x".into(), count: 1_000_001, interval_ms: 0 };
    let status = client.server_stream_rpc(message).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "count must be at most 1000000");
    assert_eq!(violations(&status), [("count".to_owned(), "count must be at most 1000000".to_owned())]);
}

#[tokio::test]
async fn invalid_interval_carries_a_field_violation() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let message = RequestMessage { request_data: "x".into(), count: 1, interval_ms: 60_001 };
    let status = client.server_stream_rpc(message).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(status.message(), "interval_ms must be at most 60000");
    assert_eq!(
        violations(&status),
        [("interval_ms".to_owned(), "interval_ms must be at most 60000".to_owned())]
    );
}

async fn call_path(server: &TestServer, path: &'static str) -> Status {
    let channel = tonic::transport::Endpoint::from_shared(server.url()).unwrap().connect().await.unwrap();
    let mut grpc = Grpc::new(channel);
    grpc.ready().await.unwrap();
    let codec = ProstCodec::<RequestMessage, ResponseMessage>::default();
    grpc.unary(Request::new(request("x")), PathAndQuery::from_static(path), codec).await.unwrap_err()
}

#[tokio::test]
async fn unknown_method_is_unimplemented() {
    let server = TestServer::start().await;
    let status = call_path(&server, "/ConnectService/NoSuchRPC").await;
    assert_eq!(
        (status.code(), status.message()),
        (Code::Unimplemented, "unknown method NoSuchRPC for service ConnectService")
    );
}

#[tokio::test]
async fn unknown_service_is_unimplemented() {
    let server = TestServer::start().await;
    let status = call_path(&server, "/NoSuchService/UnaryRPC").await;
    assert_eq!((status.code(), status.message()), (Code::Unimplemented, "unknown service NoSuchService"));
    // The server carries on.
    let mut client = server.client().await;
    assert_eq!(client.unary_rpc(request("ok")).await.unwrap().get_ref().response_data, "Hello, ok");
}

fn echo(code: &str, data: &str) -> Request<RequestMessage> {
    let mut call = Request::new(request(data));
    call.metadata_mut().insert("x-echo-status", code.parse().unwrap());
    call
}

#[tokio::test]
async fn special_status_messages_round_trip() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let status = client.unary_rpc(echo("2", SPECIAL_MESSAGE)).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::Unknown, SPECIAL_MESSAGE));
    let status = client.unary_rpc(echo("16", "café\tnaïve\nline two")).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::Unauthenticated, "café\tnaïve\nline two"));
}

#[tokio::test]
async fn every_code_can_be_echoed() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    for number in 1..=16 {
        let status = client.unary_rpc(echo(&number.to_string(), "why")).await.unwrap_err();
        assert_eq!((status.code(), status.message()), (Code::from(number), "why"));
    }
}

#[tokio::test]
async fn a_bad_echo_code_is_an_invalid_argument() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    for bad in ["0", "17", "abc"] {
        let status = client.unary_rpc(echo(bad, "x")).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "x-echo-status must be a status code from 1 to 16");
        let expected =
            ("x-echo-status".to_owned(), "x-echo-status must be a status code from 1 to 16".to_owned());
        assert_eq!(violations(&status), [expected]);
    }
}
