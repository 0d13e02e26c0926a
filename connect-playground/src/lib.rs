//! The browser playground, shared by the server (at `/` of its metrics
//! endpoint) and the client (`connect-client ui`): a page that calls every
//! method of a schema, with JSON in the page and protobuf inside, and shows
//! each call as a timeline of what a client would see: headers, messages,
//! trailers.
//!
//! The page (`assets/`: plain HTML, CSS and JavaScript, embedded in the
//! binary) reads the services and message types from `/schema.json` (made
//! from the [`Schema`]), and runs each call over a WebSocket of its own at
//! `/ws`. Each call is a `http::Request` in gRPC's shape (its body fed from
//! the socket with gRPC-framed protobuf converted from the page's JSON) sent
//! into the service stack the caller of [`router`] makes: the server's own service
//! stack, in-process, or the client's connection to a server. Its response
//! headers, messages and trailers go back to the page as they come. Nothing
//! here runs unless a page opens a socket.
//!
//! # The WebSocket protocol
//!
//! One socket per call: the page sends commands (`start`, then request
//! messages, `halfClose` or `cancel`) and the playground answers with events
//! (`request`, `sent`, `headers`, `message`, `trailers`, ...), each a JSON
//! text frame; `protocol` has them as types, and their description.
//!
//! # Hostile pages
//!
//! Upgrades from another origin (an `Origin` whose host is not the `Host`)
//! get HTTP 403 (no `Origin` is let through: every browser sends one), and
//! so does a `Host` that is not a loopback name when the endpoint listens on
//! loopback (DNS rebinding); at most [`Settings::max_calls`] calls run at
//! once; a request message has the limit [`Settings::max_message_bytes`],
//! and a WebSocket message twice that.

mod call;
mod describe;
mod protocol;
mod schema;
mod socket;

pub use schema::{Detail, Schema};

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

/// What a playground call goes through, for one peer: a gRPC request in, its
/// response out; a failure is a response too (a gRPC status).
type Stack = BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// Makes the stack for calls from a peer (its address is in their log lines).
type StackFor = Arc<dyn Fn(Option<SocketAddr>) -> Stack + Send + Sync>;

/// How a playground is bounded, where it listens, and what the page shows.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The largest request message, in bytes of protobuf.
    pub max_message_bytes: usize,
    /// The flag that sets it, named when a message is refused (`--max-recv-message-size`).
    pub max_message_flag: &'static str,
    /// Most calls running at once; beyond it a call is refused with a fatal error event.
    pub max_calls: NonZeroUsize,
    /// The flag that sets it, named when a call is refused (`--playground-max-calls`).
    pub max_calls_flag: &'static str,
    /// Where the page is served: on a loopback address, `Host` must be a loopback name.
    pub endpoint: SocketAddr,
    /// Where a client reaches the called server, for the page's "copy as" commands.
    pub grpc_url: String,
}

/// What every playground call shares.
struct Playground {
    stack: StackFor,
    schema: Schema,
    /// The description of every service, for the page.
    description: String,
    settings: Settings,
    /// One permit per call running.
    calls: Arc<Semaphore>,
}

impl std::fmt::Debug for Playground {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Playground").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// The playground's routes (`/`, its assets, `/schema.json` and `/ws`),
/// running each call through the stack `stack_for` makes for the page's
/// peer. Serve them with `into_make_service_with_connect_info::<SocketAddr>()`:
/// the socket needs the peer's address.
pub fn router<S, B>(
    stack_for: impl Fn(Option<SocketAddr>) -> S + Send + Sync + 'static,
    schema: Schema,
    settings: Settings,
) -> Router
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    let mut description = describe::services(&schema);
    description["grpcUrl"] = settings.grpc_url.clone().into();
    description["maxCalls"] = settings.max_calls.get().into();
    let description = description.to_string();
    let stack: StackFor = Arc::new(move |peer| {
        BoxCloneSyncService::new(stack_for(peer).map_response(|response| response.map(Body::new)))
    });
    let playground = Arc::new(Playground {
        stack,
        schema,
        description,
        calls: Arc::new(Semaphore::new(settings.max_calls.get())),
        settings,
    });
    Router::new()
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
        .with_state(playground)
}

/// An embedded file.
fn asset(content_type: &'static str, text: &'static str) -> impl IntoResponse {
    ([(CONTENT_TYPE, content_type), (CACHE_CONTROL, "no-cache")], text)
}
