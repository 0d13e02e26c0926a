//! What the per-call observe layer costs: the same in-memory unary call
//! through a bare service and through `ObserveLayer`, with the access log
//! off and on (formatted, then discarded), printed side by side.
//!
//! Run: `cargo bench -p connect-server --bench observe` (optionally `-- CALLS`).

use std::{convert::Infallible, hint::black_box, sync::Arc, time::Instant};

use bytes::Bytes;
use connect_server::{
    Stats,
    logging::{LineLayer, LogFormat},
    telemetry::{Metrics, ObserveLayer},
};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use tower::{Layer, Service, ServiceExt, service_fn};
use tracing_subscriber::prelude::*;

/// A unary gRPC response: one 20-byte message, then `grpc-status: 0`.
fn response() -> Response<tonic::body::Body> {
    let mut message = vec![0, 0, 0, 0, 15];
    message.extend_from_slice(b"\x0a\x0dHello, People");
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let frames: Vec<Result<_, Infallible>> =
        vec![Ok(Frame::data(Bytes::from(message))), Ok(Frame::trailers(trailers))];
    Response::new(tonic::body::Body::new(StreamBody::new(futures::stream::iter(frames))))
}

fn request(request_id: bool) -> Request<tonic::body::Body> {
    let mut request = Request::post("/ConnectService/UnaryRPC")
        .header("content-type", "application/grpc")
        .body(tonic::body::Body::new(http_body_util::Full::new(Bytes::from_static(
            b"\0\0\0\0\x08\x0a\x06People",
        ))))
        .unwrap();
    if request_id {
        request.headers_mut().insert("x-request-id", HeaderValue::from_static("bench-1"));
    }
    request
}

/// Runs `calls` calls through `service`; returns nanoseconds per call.
async fn run<S, B>(mut service: S, calls: u32, request_id: bool) -> f64
where
    S: Service<Request<tonic::body::Body>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let started = Instant::now();
    for _ in 0..calls {
        let mut request = request(request_id);
        // The handler reads the request, as tonic would.
        let body = std::mem::replace(request.body_mut(), tonic::body::Body::empty());
        black_box(body.collect().await.unwrap());
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        black_box(response.into_body().collect().await.unwrap());
    }
    started.elapsed().as_nanos() as f64 / f64::from(calls)
}

fn main() {
    let calls: u32 = std::env::args().skip(1).find_map(|arg| arg.parse().ok()).unwrap_or(200_000);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let bare = || service_fn(|_: Request<tonic::body::Body>| async { Ok::<_, Infallible>(response()) });
    let pool = prost_reflect::DescriptorPool::decode(connect_proto::FILE_DESCRIPTOR_SET).unwrap();
    let services: Vec<_> = pool.services().collect();
    let layer = ObserveLayer::new(
        Arc::new(Metrics::new(&services)),
        Arc::new(Stats::default()),
        HeaderValue::from_static("bench:1"),
    );
    let text_log = tracing_subscriber::registry().with(LineLayer::discarding(LogFormat::Text));
    let json_log = tracing_subscriber::registry().with(LineLayer::discarding(LogFormat::Json));

    let rows = [
        ("bare service", runtime.block_on(run(bare(), calls, true))),
        ("observe, log off, client id", runtime.block_on(run(layer.layer(bare()), calls, true))),
        ("observe, log off, new UUID", runtime.block_on(run(layer.layer(bare()), calls, false))),
        (
            "observe, text log, client id",
            tracing::subscriber::with_default(text_log, || {
                runtime.block_on(run(layer.layer(bare()), calls, true))
            }),
        ),
        (
            "observe, json log, client id",
            tracing::subscriber::with_default(json_log, || {
                runtime.block_on(run(layer.layer(bare()), calls, true))
            }),
        ),
    ];
    println!("{calls} in-memory unary calls each (no network):");
    let base = rows[0].1;
    for (name, nanos) in rows {
        println!("  {name:<30} {nanos:>8.0} ns/call  (+{:>5.0} ns)", nanos - base);
    }
}
