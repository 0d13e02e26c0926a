//! Fuzzes the request path: arbitrary bytes as the body of a gRPC request to
//! one of the four methods, through tonic's decoding and our handlers.
//!
//! The first input byte picks the method and the `grpc-encoding` header; the
//! rest is the HTTP/2 body (length-prefixed gRPC frames, or garbage). Every
//! input must produce a finished response with a `grpc-status`, within a
//! bounded time, and never a panic.
//!
//! Run: `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run request_path corpus/request_path`
#![no_main]

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use bytes::{Buf, Bytes};
use connect_proto::ConnectServiceServer;
use connect_server::service::{Handlers, Limits};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

const PATHS: [&str; 4] = [
    "/ConnectService/UnaryRPC",
    "/ConnectService/ServerStreamRPC",
    "/ConnectService/ClientStreamRPC",
    "/ConnectService/BidiStreamRPC",
];
const ENCODINGS: [Option<&str>; 3] = [None, Some("gzip"), Some("snappy")];

/// Small limits keep each run short: no pauses, few messages.
const LIMITS: Limits = Limits { max_stream_count: 50, max_interval_ms: 0, max_client_stream_bytes: 4096 };

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let path = PATHS[usize::from(selector) % PATHS.len()];
    let encoding = ENCODINGS[usize::from(selector / 4) % ENCODINGS.len()];
    runtime().block_on(async {
        let service = ConnectServiceServer::new(Handlers::new(LIMITS, Arc::default(), CancellationToken::new()))
            .max_decoding_message_size(64 * 1024);
        let mut request = http::Request::post(path)
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        if let Some(encoding) = encoding {
            request = request.header("grpc-encoding", encoding);
        }
        let request = request
            .body(tonic::body::Body::new(Full::new(Bytes::copy_from_slice(body))))
            .expect("valid request");
        let response = service.oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), http::StatusCode::OK);
        let headers = response.headers().clone();
        let collected = tokio::time::timeout(Duration::from_secs(5), response.into_body().collect())
            .await
            .expect("the response finishes")
            .expect("the response body does not fail");
        let trailers = collected.trailers().cloned();
        let mut bytes = collected.to_bytes();
        // The body is whole gRPC messages, nothing else.
        while bytes.has_remaining() {
            assert!(bytes.remaining() >= 5, "a truncated message prefix");
            let _flag = bytes.get_u8();
            let len = bytes.get_u32() as usize;
            assert!(bytes.remaining() >= len, "a truncated message");
            let message = bytes.split_to(len);
            <connect_proto::ResponseMessage as prost::Message>::decode(message).expect("a decodable response");
        }
        let status = trailers.as_ref().and_then(|t| t.get("grpc-status")).or_else(|| headers.get("grpc-status"));
        assert!(status.is_some(), "every response ends with a grpc-status");
    });
});
