//! The browser playground: a page served at `/` of the metrics endpoint
//! (`--metrics-addr`, loopback by default; `--playground off` turns it off)
//! that calls every method the server has, with JSON in the page and
//! protobuf inside, and shows each call as a timeline of what a client
//! would see: headers, messages, trailers.
//!
//! The page (`assets/`: plain HTML, CSS and JavaScript, embedded in the
//! binary) reads the services and message types from `/schema.json` (made
//! from the server's own descriptor set), and runs each call over a
//! WebSocket of its own at `/ws`. The server runs the call in-process
//! through the same service stack a network call takes (observe, auth,
//! dispatch, handlers): a `http::Request` whose body is fed from the socket
//! with gRPC-framed protobuf converted from the page's JSON (`web::Schema`),
//! whose response headers, messages and trailers go back to the page as they
//! come. So the calls count in the metrics and the access log like any other
//! (protocol `playground`), and the page works whatever the gRPC port speaks
//! (TLS, mTLS). Nothing here runs unless a page opens a socket: the gRPC
//! path does not change.
//!
//! # The WebSocket protocol
//!
//! One socket per call; every message is a JSON text frame. The page sends:
//!
//! - `{"type":"start","method":"/ConnectService/UnaryRPC","metadata":{"authorization":"Bearer t"},"timeoutMs":1000}`:
//!   first, once. `metadata` (optional) is the request metadata, lower-case
//!   keys (`-bin` values in base64); `grpc-*` and HTTP's own headers are
//!   refused. `timeoutMs` (optional) is sent as `grpc-timeout`.
//! - `{"type":"message","json":{"requestData":"ping"}}`: one request message,
//!   in canonical proto3 JSON (snake_case names accepted). For a method whose
//!   client sends one message (unary, server streaming) the request is
//!   half-closed after it.
//! - `{"type":"halfClose"}`: the client has no more messages.
//! - `{"type":"cancel"}`: cancels the call (as `RST_STREAM(CANCEL)` would).
//!
//! The server answers with events, each with `t`, the milliseconds since
//! the call began:
//!
//! - `{"type":"request","t":0,"method":..,"headers":{..}}`: the request
//!   headers the service got (`content-type`, `te`, `grpc-timeout`, metadata).
//! - `{"type":"sent","t":..,"json":{..}}`: a request message went in (as the
//!   server read it); `{"type":"halfClosed","t":..}`: the request ended.
//! - `{"type":"headers","t":..,"headers":{..}}`: the response headers
//!   (`x-request-id`, `x-served-by`, ...).
//! - `{"type":"message","t":..,"json":{..}}`: one response message.
//! - `{"type":"trailers","t":..,"status":3,"code":"INVALID_ARGUMENT","message":"..","trailers":{..},"details":[..],"trailersOnly":false}`:
//!   the end of the call; `details` are the `grpc-status-details-bin`
//!   details as JSON with their `@type` (`google.rpc.BadRequest`, ...).
//! - `{"type":"cancelled","t":..,"code":"CANCELLED"}`: the call was cancelled
//!   at the page's request.
//! - `{"type":"error","t":..,"message":"..","fatal":false}`: input the
//!   playground refused (invalid JSON, a message after the half-close, a
//!   message over `--max-recv-message-size`, ...); the call goes on. With
//!   `"fatal":true` there is no call (an unknown method, bad metadata, too
//!   many calls at once, no `start` in time).
//!
//! The server closes the socket after `trailers`, `cancelled` or a fatal
//! `error`. A socket that drops mid-call cancels the call (the access log
//! says `CANCELLED`).
//!
//! # Hostile pages
//!
//! Upgrades from another origin (an `Origin` whose host is not the `Host`)
//! get HTTP 403 (no `Origin` is let through: every browser sends one), and so does a `Host` that is not a loopback name when the
//! endpoint listens on loopback (DNS rebinding); at most
//! `--playground-max-calls` calls run at once; a request message has the
//! limit of the gRPC port, and a WebSocket message twice that.

mod call;
mod describe;
mod socket;

use std::{convert::Infallible, net::SocketAddr, num::NonZeroUsize, sync::Arc};

use axum::{
    Router,
    http::header::{CACHE_CONTROL, CONTENT_TYPE},
    response::IntoResponse,
    routing::get,
};
use http::{Request, Response};
use tokio::sync::Semaphore;
use tonic::body::Body;
use tower::{Service, ServiceExt as _, util::BoxCloneSyncService};

use crate::{service::MessageLimits, web::Schema};

/// The service stack a playground call goes through, for one peer.
pub(crate) type Stack = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// Makes the stack for calls from a peer (its address is in their log lines).
pub(crate) type StackFor = Arc<dyn Fn(Option<SocketAddr>) -> Stack + Send + Sync>;

/// What every playground call shares.
pub(crate) struct Playground {
    stack: StackFor,
    schema: Schema,
    /// The description of every service, for the page.
    description: String,
    messages: MessageLimits,
    /// One permit per call running.
    calls: Arc<Semaphore>,
    max_calls: usize,
    /// Whether the endpoint listens on loopback (then `Host` must name it).
    loopback: bool,
}

impl std::fmt::Debug for Playground {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Playground").field("max_calls", &self.max_calls).finish_non_exhaustive()
    }
}

/// The playground's routes for the metrics endpoint at `endpoint`, running
/// calls through the stack `stack_for` makes; clients reach the gRPC port at
/// `grpc_url` (for the page's "copy as" commands).
pub(crate) fn router<S, B>(
    stack_for: impl Fn(Option<SocketAddr>) -> S + Send + Sync + 'static,
    schema: Schema,
    messages: MessageLimits,
    max_calls: NonZeroUsize,
    endpoint: SocketAddr,
    grpc_url: String,
) -> anyhow::Result<Router>
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    let mut description = describe::services(&schema);
    description["grpcUrl"] = grpc_url.into();
    description["maxCalls"] = max_calls.get().into();
    let description = description.to_string();
    let stack: StackFor = Arc::new(move |peer| {
        BoxCloneSyncService::new(stack_for(peer).map_response(|response| response.map(Body::new)))
    });
    let playground = Arc::new(Playground {
        stack,
        schema,
        description,
        messages,
        calls: Arc::new(Semaphore::new(max_calls.get())),
        max_calls: max_calls.get(),
        loopback: endpoint.ip().is_loopback(),
    });
    Ok(Router::new()
        .route("/", get(|| async { asset("text/html; charset=utf-8", include_str!("assets/index.html")) }))
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", include_str!("assets/app.js")) }),
        )
        .route(
            "/style.css",
            get(|| async { asset("text/css; charset=utf-8", include_str!("assets/style.css")) }),
        )
        .route("/schema.json", get(describe::serve))
        .route("/ws", get(socket::upgrade))
        .with_state(playground))
}

/// An embedded file.
fn asset(content_type: &'static str, text: &'static str) -> impl IntoResponse {
    ([(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")], text)
}
