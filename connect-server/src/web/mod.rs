//! The other protocols on the gRPC port: gRPC-Web (with `tonic-web`) and the
//! Connect protocol, each a translation at the edge into a gRPC call to the
//! same service stack (observe, auth, handlers) and of its answer back, so
//! every handler is written once. Plain gRPC goes straight through, as if
//! this room were not there; everything else takes the web path: the
//! translations, CORS for pages on other origins (`--cors-allow-origin`),
//! and HTTP 415 with the accepted content types for what no enabled
//! protocol speaks.

mod compression;
mod connect;
mod cors;
mod envelope;
mod protocol;
pub(crate) mod schema;

pub use protocol::Protocol;
pub(crate) use protocol::{Arrived, Enabled};
pub(crate) use schema::Schema;

use std::{
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use futures::{
    TryFutureExt,
    future::{BoxFuture, Either, MapOk},
};
use http::{HeaderValue, Request, Response, StatusCode, header::CONTENT_TYPE};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use tonic::{Status, body::Body};
use tower::{Layer, Service, util::BoxCloneService};
use tower_http::cors::CorsLayer;

use self::{connect::Shape, protocol::Kind};
use crate::{grpc::content_type, service::MessageLimits, transport::ReceiveBudget};

/// How much of a refused request's body is read so its HTTP/1.1 connection can
/// carry the next request; past it the connection closes after the answer.
const UNREAD_BODY_LIMIT: usize = 64 * 1024;

/// What the web path of every connection shares.
#[derive(Debug)]
pub(crate) struct WebShared {
    /// The protocols turned on.
    pub(crate) enabled: Enabled,
    /// CORS, when some origin is allowed.
    cors: Option<CorsLayer>,
    /// Every message type, for JSON.
    schema: Schema,
    /// The same message limits as the gRPC service.
    messages: MessageLimits,
    /// How long a unary Connect body may go without a byte (`--body-read-timeout`).
    body_read_timeout: Duration,
    /// Where a unary Connect body being read takes its bytes from (`--max-pending-message-bytes`).
    receiving: Option<Arc<ReceiveBudget>>,
    /// The body of a 415.
    unsupported: Bytes,
}

impl WebShared {
    /// The web path for `enabled` protocols to the services of `schema`,
    /// pages from `cors_origins` (`*`: any).
    pub(crate) fn new(
        enabled: Enabled,
        cors_origins: &[String],
        messages: MessageLimits,
        body_read_timeout: Duration,
        schema: Schema,
    ) -> anyhow::Result<Self> {
        let accepted = enabled.accepted_content_types();
        let unsupported = format!(
            "unsupported content type; this server accepts {}\n",
            accepted.to_str().expect("content types are text")
        );
        Ok(Self {
            enabled,
            cors: cors::layer(cors_origins)?,
            schema,
            messages,
            body_read_timeout,
            receiving: None,
            unsupported: Bytes::from(unsupported),
        })
    }
}

/// Puts the web path in front of a connection's gRPC service stack.
#[derive(Debug, Clone)]
pub(crate) struct EdgeLayer {
    shared: Arc<WebShared>,
}

impl EdgeLayer {
    /// The edge for every connection of a server.
    pub(crate) fn new(shared: WebShared) -> Self {
        Self { shared: Arc::new(shared) }
    }

    /// The same, with unary Connect bodies read within `budget` (the server
    /// makes it after the settings, with its refusal counter).
    pub(crate) fn within(mut self, budget: &Arc<ReceiveBudget>) -> Self {
        let shared =
            Arc::get_mut(&mut self.shared).expect("the edge is not shared before the server is made");
        shared.receiving = Some(Arc::clone(budget));
        self
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, grpc: S) -> Self::Service {
        Edge { grpc, web: None, shared: Arc::clone(&self.shared) }
    }
}

/// The web path of one connection, boxed: it is built on first use, so a
/// connection that carries only gRPC never pays for it.
type WebService = BoxCloneService<Request<Incoming>, Response<Body>, Infallible>;

/// One connection's service: gRPC to `S` directly, the rest by the web path.
pub(crate) struct Edge<S> {
    grpc: S,
    web: Option<WebService>,
    shared: Arc<WebShared>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Edge<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge").field("grpc", &self.grpc).field("web", &self.web.is_some()).finish()
    }
}

/// What the edge asks of a connection's gRPC service stack: it serves hyper's
/// requests and translated ones, never fails, clones cheaply, and its futures
/// move to the connection's task. (One name for the bounds both services repeat.)
pub(crate) trait GrpcStack:
    Service<
        Request<Incoming>,
        Response = Response<Self::ResponseBody>,
        Error = Infallible,
        Future: Send + 'static,
    > + Service<
        Request<Body>,
        Response = Response<Self::ResponseBody>,
        Error = Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
    /// The body of its responses.
    type ResponseBody: http_body::Body<Data = Bytes, Error = Status> + Send + 'static;
}

impl<S, B> GrpcStack for S
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible, Future: Send + 'static>
        + Service<Request<Body>, Response = Response<B>, Error = Infallible, Future: Send + 'static>
        + Clone
        + Send
        + 'static,
    B: http_body::Body<Data = Bytes, Error = Status> + Send + 'static,
{
    type ResponseBody = B;
}

/// The response body of either path.
pub(crate) type EdgeBody<B> = http_body_util::Either<B, Body>;

/// How a gRPC response becomes the edge's (a plain function: no closure type in the future's name).
type ToEdge<B> = fn(Response<B>) -> Response<EdgeBody<B>>;

impl<S: GrpcStack> Service<Request<Incoming>> for Edge<S> {
    type Response = Response<EdgeBody<S::ResponseBody>>;
    type Error = Infallible;
    type Future = Either<
        MapOk<<S as Service<Request<Incoming>>>::Future, ToEdge<S::ResponseBody>>,
        BoxFuture<'static, Result<Response<EdgeBody<S::ResponseBody>>, Infallible>>,
    >;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Every service of the stack is always ready (see `transport::http`).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Self::Future {
        // The one check plain gRPC pays: the observe layer's own, on bytes.
        if self.shared.enabled.grpc && content_type::is_grpc(request.headers().get(CONTENT_TYPE)) {
            let left: ToEdge<S::ResponseBody> = |response| response.map(EdgeBody::Left);
            return Either::Left(Service::<Request<Incoming>>::call(&mut self.grpc, request).map_ok(left));
        }
        let web = self.web.get_or_insert_with(|| {
            let path = WebPath { inner: self.grpc.clone(), shared: Arc::clone(&self.shared) };
            match &self.shared.cors {
                Some(cors) => BoxCloneService::new(cors.layer(path)),
                None => BoxCloneService::new(path),
            }
        });
        Either::Right(Box::pin(web.call(request).map_ok(|response| response.map(EdgeBody::Right))))
    }
}

/// The web path: the translations, and the 415 for the rest.
#[derive(Clone)]
struct WebPath<S> {
    inner: S,
    shared: Arc<WebShared>,
}

impl<S: GrpcStack> Service<Request<Incoming>> for WebPath<S> {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Incoming>) -> Self::Future {
        let enabled = self.shared.enabled;
        let inner = self.inner.clone();
        match Kind::of(request.headers()) {
            Kind::GrpcWeb if enabled.grpc_web => {
                request.extensions_mut().insert(Arrived::Via(Protocol::GrpcWeb));
                let mut grpc_web = tonic_web::GrpcWebLayer::new().layer(inner);
                Box::pin(grpc_web.call(request))
            }
            Kind::ConnectUnary(codec) if enabled.connect => {
                Box::pin(connect::call(inner, Arc::clone(&self.shared), request, Shape::Unary(codec)))
            }
            Kind::ConnectStream(codec) if enabled.connect => {
                Box::pin(connect::call(inner, Arc::clone(&self.shared), request, Shape::Stream(codec)))
            }
            _ => {
                // Through the stack all the same, so the refusal is logged like any call.
                request.extensions_mut().insert(Arrived::Unsupported);
                let (parts, body) = request.into_parts();
                let text = self.shared.unsupported.clone();
                let mut inner = inner;
                Box::pin(async move {
                    // Read (a bounded part of) the body first: an HTTP/1.1 connection whose
                    // request was not read to its end cannot carry the client's next request.
                    let _ = Limited::new(body, UNREAD_BODY_LIMIT).collect().await;
                    let request = Request::from_parts(parts, Body::empty());
                    let response = Service::<Request<Body>>::call(&mut inner, request).await?;
                    Ok(unsupported(response, text))
                })
            }
        }
    }
}

/// The stack's 415 with a body saying what the server accepts.
fn unsupported<B>(response: Response<B>, text: Bytes) -> Response<Body>
where
    B: http_body::Body<Data = Bytes, Error = Status> + Send + 'static,
{
    if response.status() != StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return response.map(Body::new);
    }
    let (mut parts, _) = response.into_parts();
    parts.headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    Response::from_parts(parts, Body::new(Full::new(text)))
}
