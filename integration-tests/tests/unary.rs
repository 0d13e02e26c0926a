//! `UnaryRPC`: one request, one response.

use integration_tests::{TestServer, Transport, on_both_transports, request};

async fn unary_says_hello(transport: Transport) {
    let server = TestServer::start_over(transport, &[]).await;
    let mut client = server.client().await;
    let response = client.unary_rpc(request("People")).await.unwrap().into_inner();
    assert_eq!(response.response_data, "Hello, People");
    assert_eq!(server.stats.snapshot().unary, 1);
}

async fn unary_accepts_empty_data(transport: Transport) {
    let server = TestServer::start_over(transport, &[]).await;
    let mut client = server.client().await;
    let response = client.unary_rpc(request("")).await.unwrap().into_inner();
    assert_eq!(response.response_data, "Hello, ");
}

on_both_transports!(unary_says_hello, unary_accepts_empty_data,);
