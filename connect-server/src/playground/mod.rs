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
//! One socket per call: the page sends commands (`start`, then request
//! messages, `halfClose` or `cancel`) and the server answers with events
//! (`request`, `sent`, `headers`, `message`, `trailers`, ...), each a JSON
//! text frame; `protocol` has them as types, and their description.
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
mod protocol;
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
