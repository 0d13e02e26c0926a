//! gzip and zstd: the server accepts compressed requests and compresses its
//! responses for clients that ask.

use clap::Parser;
use connect_client::{Cli, call};
use connect_proto::RequestMessage;
use integration_tests::{TestServer, request};
use tonic::codec::CompressionEncoding;

fn encoding_of<T>(response: &tonic::Response<T>) -> Option<&str> {
    response.metadata().get("grpc-encoding").map(|value| value.to_str().expect("ascii"))
}

async fn round_trip(encoding: CompressionEncoding, name: &str) {
    let server = TestServer::start().await;
    let mut client = server.client().await.send_compressed(encoding).accept_compressed(encoding);
    let data = "compress me ".repeat(100);
    let response = client.unary_rpc(request(&data)).await.unwrap();
    assert_eq!(encoding_of(&response), Some(name));
    assert_eq!(response.into_inner().response_data, format!("Hello, {data}"));

    let ask = RequestMessage { request_data: "z".into(), count: 3, interval_ms: 0 };
    let stream = client.server_stream_rpc(ask).await.unwrap();
    assert_eq!(encoding_of(&stream), Some(name));
    let mut stream = stream.into_inner();
    let mut received = Vec::new();
    while let Some(message) = stream.message().await.unwrap() {
        received.push(message.response_data);
    }
    assert_eq!(received, ["Hello, z: server(1) ", "Hello, z: server(2) ", "Hello, z: server(3) "]);
}

#[tokio::test]
async fn gzip_both_ways() {
    round_trip(CompressionEncoding::Gzip, "gzip").await;
}

#[tokio::test]
async fn zstd_both_ways() {
    round_trip(CompressionEncoding::Zstd, "zstd").await;
}

#[tokio::test]
async fn uncompressed_unless_asked() {
    let server = TestServer::start().await;
    let mut client = server.client().await;
    let response = client.unary_rpc(request("plain")).await.unwrap();
    assert_eq!(encoding_of(&response), None);
    // Asking for gzip responses only (requests uncompressed) gets gzip back.
    let mut client = server.client().await.accept_compressed(CompressionEncoding::Gzip);
    let response = client.unary_rpc(request("plain")).await.unwrap();
    assert_eq!(encoding_of(&response), Some("gzip"));
}

#[tokio::test]
async fn client_compress_flag() {
    let server = TestServer::start().await;
    let cli =
        Cli::parse_from(["connect-client", "--addr", &server.url(), "--compress", "zstd", "unary", "z"]);
    connect_client::run(cli).await.expect("zstd call");
    let mut client = call::client(
        server.channel().await,
        &call::CallOptions { compress: Some(CompressionEncoding::Gzip), ..Default::default() },
    )
    .unwrap();
    let response = client.unary_rpc(request("g")).await.unwrap();
    assert_eq!(encoding_of(&response), Some("gzip"));
}

#[tokio::test]
async fn decompressed_size_is_limited_too() {
    let server = TestServer::start_with_args(&["--max-recv-message-size", "1024"]).await;
    let data = "a".repeat(5000);
    // Uncompressed, the frame itself is over the limit.
    let mut plain = server.client().await;
    let status = plain.unary_rpc(request(&data)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::OutOfRange);
    // gzip shrinks the frame under the limit (so it really was sent compressed),
    // and the limit still holds for the decompressed message: no decompression bombs.
    let mut gzip = server.client().await.send_compressed(CompressionEncoding::Gzip);
    let status = gzip.unary_rpc(request(&data)).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (
            tonic::Code::ResourceExhausted,
            "Error decompressing: size limit, of 1024 bytes, exceeded while decompressing message"
        )
    );
    let response = gzip.unary_rpc(request(&"a".repeat(1000))).await.unwrap().into_inner();
    assert_eq!(response.response_data.len(), "Hello, ".len() + 1000);
}
