//! The per-call tower layer: request id and server id in the response
//! headers, and the call's final code from wherever it travels: the headers
//! of a trailers-only response, or the trailers at the end of the body.
//! Messages are counted from the gRPC framing of both bodies, so every
//! service behind the layer is counted the same way without help from its
//! handlers.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header::CONTENT_TYPE};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tonic::Code;
use tower::{Layer, Service};

use connect_proto::{
    framing::FrameCounter,
    headers::{GRPC_TIMEOUT, X_REQUEST_ID, X_SERVED_BY},
};

use super::{
    call::{Call, CallsShared, Method},
    metrics::Metrics,
    stats::Stats,
    trace::{CallSpan, Tracing},
};
use crate::{
    grpc::{content_type, deadline, status},
    transport::ConnectionCalls,
    web::{Arrived, Protocol},
};

/// Adds the per-call behaviour (see the module docs) to a gRPC service.
#[derive(Debug, Clone)]
pub struct ObserveLayer {
    // One Arc: the stack is cloned for every connection.
    shared: Arc<CallsShared>,
}

impl ObserveLayer {
    /// A layer counting into `metrics` and `stats` (cancelled and deadline-exceeded calls),
    /// naming the server `served_by`.
    pub fn new(metrics: Arc<Metrics>, stats: Arc<Stats>, served_by: HeaderValue) -> Self {
        Self { shared: Arc::new(CallsShared { metrics, stats, served_by, tracing: None }) }
    }

    /// The same, with a span per call.
    pub(crate) fn traced(mut self, tracing: Option<Arc<Tracing>>) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.tracing = tracing;
        }
        self
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe { inner, layer: self.clone(), connection: None }
    }
}

/// The service [`ObserveLayer`] makes.
#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
    layer: ObserveLayer,
    /// The connection this copy serves: its peer is logged, its calls counted.
    connection: Option<Arc<ConnectionCalls>>,
}

impl<S: Clone> Observe<S> {
    /// A copy for the calls of one connection.
    pub(crate) fn on_connection(&self, connection: &Arc<ConnectionCalls>) -> Self {
        Self {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
            connection: Some(Arc::clone(connection)),
        }
    }
}

impl<S, B, ResBody> Service<Request<B>> for Observe<S>
where
    S: Service<Request<tonic::body::Body>, Response = Response<ResBody>>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
    ResBody: Body<Data = Bytes> + Default,
{
    type Response = Response<ObservedBody<ResBody>>;
    type Error = S::Error;
    type Future = ObservedFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // A call that came by another protocol was translated into gRPC at the edge.
        let arrived = request.extensions().get::<Arrived>().copied();
        let protocol = match arrived {
            Some(Arrived::Via(protocol)) => protocol,
            Some(Arrived::Unsupported) | None => Protocol::Grpc,
        };
        // Checked here rather than in a layer of its own: one future less per call.
        let is_grpc = arrived != Some(Arrived::Unsupported)
            && content_type::is_grpc(request.headers().get(CONTENT_TYPE));
        // A request that is not gRPC is logged but not counted: like grpc-go, whose
        // transport answers it before any interceptor (and so go-grpc-prometheus) runs.
        let known = self.layer.shared.metrics.method(request.uri().path()).filter(|_| is_grpc);
        let method = match known {
            Some(metrics) => Method::Known(Arc::clone(metrics)),
            None => Method::Unknown(Box::new(request.uri().clone())),
        };
        let request_id = request.headers().get(X_REQUEST_ID).cloned().unwrap_or_else(new_request_id);
        // Fixed as the request arrives, not when the handler first runs (see `deadline::CallDeadline`).
        let call_deadline =
            request.headers().get(GRPC_TIMEOUT).and_then(|value| deadline::from_header(value.as_bytes()));
        if let Some(at) = call_deadline {
            request.extensions_mut().insert(deadline::CallDeadline(at));
        }
        let span = self.layer.shared.tracing.as_ref().map(|tracing| {
            let peer = self.connection.as_ref().and_then(|connection| connection.addr());
            tracing.start(request.uri().path(), request.headers(), protocol, peer)
        });
        let call = Call::start(
            method,
            protocol,
            self.connection.clone(),
            request_id,
            call_deadline,
            Arc::clone(&self.layer.shared),
            span,
        );
        if !is_grpc {
            let rejected = content_type::unsupported_media_type();
            return ObservedFuture {
                pending: Pending::Rejected { response: Some(Box::new(rejected)) },
                call: Some(call),
            };
        }
        // One box for the inner services, with the counting inside it.
        let received = call.metrics().map(|metrics| metrics.received.clone());
        // A span the sampler dropped has no events to take from the body.
        let span = call.span().filter(|span| span.is_recording()).cloned();
        let request = if received.is_some() || span.is_some() {
            request.map(|inner| {
                let frames = FrameCounter::default();
                tonic::body::Body::new(CountReceived { inner, frames, received, span, half_closed: false })
            })
        } else {
            request.map(tonic::body::Body::new)
        };
        ObservedFuture { pending: Pending::Inner { future: self.inner.call(request) }, call: Some(call) }
    }
}

/// The W3C Trace Context level 2 response header, naming the call's span.
const TRACERESPONSE: http::HeaderName = http::HeaderName::from_static("traceresponse");

/// A random (v4) UUID, the request id of a call that came without one.
fn new_request_id() -> HeaderValue {
    let mut buffer = uuid::Uuid::encode_buffer();
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
    HeaderValue::from_str(text).expect("a UUID is a valid header value")
}

pin_project! {
    /// The request body, counting the messages the handler reads (and
    /// noting them and the half-close in the call's span).
    struct CountReceived<B> {
        #[pin]
        inner: B,
        frames: FrameCounter,
        received: Option<prometheus::IntCounter>,
        span: Option<CallSpan>,
        half_closed: bool,
    }
}

impl<B: Body<Data = Bytes>> Body for CountReceived<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut this = self.project();
        let frame = ready!(this.inner.as_mut().poll_frame(cx));
        if let Some(Ok(frame)) = &frame
            && let Some(data) = frame.data_ref()
        {
            let messages = this.frames.feed(data);
            if messages > 0 {
                if let Some(received) = this.received {
                    received.inc_by(messages);
                }
                if let Some(span) = this.span {
                    span.received(messages);
                }
            }
        }
        if let Some(span) = this.span
            && !*this.half_closed
            && (frame.is_none() || this.inner.is_end_stream())
        {
            *this.half_closed = true;
            span.half_closed();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project! {
    /// The response future: adds the headers and hands the call to the body.
    pub struct ObservedFuture<F, B> {
        #[pin]
        pending: Pending<F, B>,
        call: Option<Call>,
    }
}

pin_project! {
    /// The inner service's response, or the answer to a request it never saw.
    #[project = PendingProj]
    enum Pending<F, B> {
        Inner { #[pin] future: F },
        // Boxed: a rare path, and a response inline would double the size of every call's future.
        Rejected { response: Option<Box<Response<B>>> },
    }
}

impl<F, ResBody, E> Future for ObservedFuture<F, ResBody>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<ObservedBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = match this.pending.project() {
            PendingProj::Inner { future } => ready!(future.poll(cx)),
            PendingProj::Rejected { response } => Ok(*response.take().expect("polled after completion")),
        };
        let mut call = this.call.take().expect("polled after completion");
        Poll::Ready(match result {
            Ok(mut response) => {
                let headers = response.headers_mut();
                // Never indexed: an id is unique to its call, and indexing it would only churn
                // both HPACK tables (and the searches through them) on every response.
                let mut request_id = call.request_id().clone();
                request_id.set_sensitive(true);
                headers.insert(X_REQUEST_ID, request_id);
                headers.insert(X_SERVED_BY, call.served_by().clone());
                if let Some(span) = call.span() {
                    headers.insert(TRACERESPONSE, span.traceresponse().clone());
                }
                // A trailers-only response: the status is in the headers and the body is empty.
                if let Some(code) = status::code_in(headers) {
                    call.finish(code);
                } else if response.status() != StatusCode::OK {
                    // Plain HTTP: the only such answer here is the 415 above, which a gRPC
                    // client reads as UNKNOWN (the spec's HTTP mapping). Not CANCELLED.
                    call.finish(Code::Unknown);
                }
                Ok(response.map(|inner| ObservedBody { inner, call, frames: FrameCounter::default() }))
            }
            Err(error) => {
                call.finish(Code::Unknown);
                Err(error)
            }
        })
    }
}

pin_project! {
    /// The response body: counts sent messages and reads the final status from the trailers.
    /// Dropped before that (the client reset the stream), the call ends as cancelled.
    pub struct ObservedBody<B> {
        #[pin]
        inner: B,
        call: Call,
        frames: FrameCounter,
    }
}

impl<B> Body for ObservedBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    let messages = this.frames.feed(data);
                    if messages > 0 {
                        this.call.sent(messages);
                    }
                } else if let Some(trailers) = frame.trailers_ref() {
                    this.call.finish(status_of(trailers));
                }
            }
            // A body that fails or ends without a status is not a well-formed gRPC response.
            Some(Err(_)) | None => this.call.finish(Code::Unknown),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The `grpc-status` of a trailer block; `Unknown` when missing, as the spec says.
fn status_of(trailers: &HeaderMap) -> Code {
    status::code_in(trailers).unwrap_or(Code::Unknown)
}
