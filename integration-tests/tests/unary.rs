//! `UnaryRPC`: one request, one response.

use integration_tests::{TestServer, request};

#[tokio::test]
async fn unary_says_hello() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let response = client.unary_rpc(request("People")).await.unwrap().into_inner();
    assert_eq!(response.response_data, "Hello, People");
    assert_eq!(server.stats.snapshot().unary, 1);
}

#[tokio::test]
async fn unary_accepts_empty_data() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let response = client.unary_rpc(request("")).await.unwrap().into_inner();
    assert_eq!(response.response_data, "Hello, ");
}
