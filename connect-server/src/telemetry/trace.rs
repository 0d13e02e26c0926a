//! OpenTelemetry tracing: one server span per call, continued from the
//! client's W3C `traceparent`/`tracestate` on every protocol (the web
//! translations pass the headers on as metadata), exported in bounded
//! batches over OTLP/gRPC.
//!
//! Off unless an endpoint is given (`--otlp-endpoint`, or the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT`/`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); off,
//! a call pays one branch. The sampler, the service name and the batching
//! come from the standard variables (`OTEL_TRACES_SAMPLER`,
//! `OTEL_TRACES_SAMPLER_ARG`, `OTEL_SERVICE_NAME`, `OTEL_BSP_*`), read by the
//! SDK. The batch queue is bounded and a full one drops spans, so a slow or
//! unreachable collector never slows or fails a call.
//!
//! The attributes follow the RPC semantic conventions of the
//! `opentelemetry-semantic-conventions` release in use (schema 1.42.0):
//! `rpc.system.name`, `rpc.method` (`package.Service/Method`, also the span's
//! name), `rpc.response.status_code`, `network.peer.*`, `error.type` on the
//! codes a server counts as errors. Each message is an `rpc.message` event
//! (at most [`MAX_EVENTS`] per span, the SDK's default limit), and the
//! half-close and a cancellation are events too: the lifecycle the
//! playground draws.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use http::{HeaderMap, HeaderValue};
use opentelemetry::{
    KeyValue,
    propagation::{Extractor, TextMapPropagator as _},
    trace::{Span as _, SpanKind, Status, TraceId, Tracer as _, TracerProvider as _},
};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::{
    Resource,
    propagation::TraceContextPropagator,
    trace::{BatchSpanProcessor, SdkTracer, SdkTracerProvider},
};
use opentelemetry_semantic_conventions::attribute;
use tonic::Code;

use connect_proto::codes;

use crate::web::Protocol;

/// The most events one span records, as the SDK's default span limit.
pub(crate) const MAX_EVENTS: u32 = 128;

/// The attributes of an `rpc.message` event. Schema 1.42 obsoletes the
/// event with no replacement; it is kept, named as otelgrpc and the earlier
/// conventions name it, because the messages are the call's lifecycle.
const MESSAGE_TYPE: &str = "rpc.message.type";
const MESSAGE_ID: &str = "rpc.message.id";

/// How long the last batch may take to leave at shutdown.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The tracer of a server with tracing on.
#[derive(Debug)]
pub(crate) struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
}

impl Tracing {
    /// Tracing to `endpoint`, or to the standard variables' endpoint; `None`
    /// when neither is set (or `OTEL_SDK_DISABLED=true`). Must run inside a
    /// tokio runtime, which then carries the exporter's connection.
    pub(crate) fn from_settings(endpoint: Option<&str>) -> anyhow::Result<Option<Self>> {
        let from_env = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]
            .iter()
            .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()));
        let disabled =
            std::env::var("OTEL_SDK_DISABLED").is_ok_and(|value| value.eq_ignore_ascii_case("true"));
        if disabled || (endpoint.is_none() && !from_env) {
            return Ok(None);
        }
        // The exporter's connection lives on the runtime that builds the server.
        anyhow::ensure!(
            tokio::runtime::Handle::try_current().is_ok(),
            "tracing needs the server built inside a tokio runtime"
        );
        let mut exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic();
        if let Some(endpoint) = endpoint {
            exporter = exporter.with_endpoint(endpoint);
        }
        let exporter =
            exporter.build().map_err(|error| anyhow::anyhow!("cannot set up the OTLP exporter: {error}"))?;
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name(default_service_name());
        }
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(exporter).build())
            .with_resource(resource.build())
            .build();
        let tracer = provider.tracer("connect-server");
        Ok(Some(Self { provider, tracer, propagator: TraceContextPropagator::new() }))
    }

    /// The span of a call to `path` that came by `protocol` from `peer`,
    /// the child of the `traceparent` in `headers` when there is one.
    pub(crate) fn start(
        &self,
        path: &str,
        headers: &HeaderMap,
        protocol: Protocol,
        peer: Option<SocketAddr>,
    ) -> CallSpan {
        let parent = self.propagator.extract(&Headers(headers));
        let method = path.strip_prefix('/').unwrap_or(path).to_owned();
        // The attributes are set once the sampler has kept the span: at 1% sampling the
        // other 99 calls would build them only to drop them. (So a sampler sees the
        // name and kind, not the attributes.)
        let mut span = self
            .tracer
            .span_builder(method.clone())
            .with_kind(SpanKind::Server)
            .start_with_context(&self.tracer, &parent);
        let recording = span.is_recording();
        if recording {
            let mut attributes = Vec::with_capacity(4);
            attributes.push(KeyValue::new(attribute::RPC_SYSTEM_NAME, system_name(protocol)));
            attributes.push(KeyValue::new(attribute::RPC_METHOD, method));
            if let Some(peer) = peer {
                attributes.push(KeyValue::new(attribute::NETWORK_PEER_ADDRESS, peer.ip().to_string()));
                attributes.push(KeyValue::new(attribute::NETWORK_PEER_PORT, i64::from(peer.port())));
            }
            span.set_attributes(attributes);
        }
        let context = span.span_context();
        let trace_id = context.trace_id();
        // W3C Trace Context level 2's response header: which span served the call.
        let response = format!("00-{trace_id}-{}-{:02x}", context.span_id(), context.trace_flags().to_u8());
        let mut response = HeaderValue::from_str(&response).expect("hex digits and dashes");
        // Never indexed: unique to its call, it would only churn both HPACK tables.
        response.set_sensitive(true);
        CallSpan(Arc::new(SpanShared {
            trace_id,
            response,
            recording,
            state: Mutex::new(SpanState { span, recording, events: 0, sent: 0, received: 0 }),
        }))
    }

    /// Sends what is batched; waits at most a few seconds.
    pub(crate) async fn flush(&self) {
        let provider = self.provider.clone();
        // The SDK's shutdown blocks until its thread has exported: not on a runtime thread.
        let shutdown = tokio::task::spawn_blocking(move || provider.shutdown());
        if tokio::time::timeout(FLUSH_TIMEOUT, shutdown).await.is_err() {
            tracing::warn!("the last spans were not exported within {FLUSH_TIMEOUT:?}");
        }
    }
}

/// The `service.name` when `OTEL_SERVICE_NAME` is not set: the binary's name.
fn default_service_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|path| path.file_stem().map(|name| name.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "connect-server".to_owned())
}

/// `rpc.system.name`: a Connect call is `connectrpc`; gRPC-Web and the playground are gRPC's.
fn system_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Connect => "connectrpc",
        Protocol::Grpc | Protocol::GrpcWeb | Protocol::Playground => "grpc",
    }
}

/// The codes a gRPC server span counts as errors (the RPC semantic conventions).
fn is_server_error(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss
    )
}

/// A request's headers as the propagator reads them.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// One call's span, shared by the request body (messages received, the
/// half-close) and the response (messages sent, the end).
///
/// One pointer: every call carries an `Option<CallSpan>` through its
/// futures and bodies, which are moved at each layer, tracing on or off.
#[derive(Debug, Clone)]
pub(crate) struct CallSpan(Arc<SpanShared>);

#[derive(Debug)]
struct SpanShared {
    trace_id: TraceId,
    /// The `traceresponse` header value.
    response: HeaderValue,
    /// Whether the sampler kept the span; when not, only its ids are used.
    recording: bool,
    state: Mutex<SpanState>,
}

#[derive(Debug)]
struct SpanState {
    span: opentelemetry_sdk::trace::Span,
    /// Whether the sampler kept it: a span that is not recorded gets no events.
    recording: bool,
    events: u32,
    sent: u64,
    received: u64,
}

impl SpanState {
    fn event(&mut self, name: &'static str, attributes: Vec<KeyValue>) {
        if self.recording && self.events < MAX_EVENTS {
            self.events += 1;
            self.span.add_event(name, attributes);
        }
    }

    fn messages(&mut self, kind: &'static str, first: u64, count: u64) {
        for id in first..first + count {
            if !self.recording || self.events >= MAX_EVENTS {
                return;
            }
            self.event(
                "rpc.message",
                vec![
                    KeyValue::new(MESSAGE_TYPE, kind),
                    KeyValue::new(MESSAGE_ID, i64::try_from(id).unwrap_or(i64::MAX)),
                ],
            );
        }
    }
}

impl CallSpan {
    fn with<R>(&self, f: impl FnOnce(&mut SpanState) -> R) -> R {
        f(&mut self.0.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The trace the call belongs to, for its access-log line.
    pub(crate) fn trace_id(&self) -> TraceId {
        self.0.trace_id
    }

    /// The `traceresponse` header of the call's response.
    pub(crate) fn traceresponse(&self) -> &HeaderValue {
        &self.0.response
    }

    /// Whether the span is recorded (the sampler kept it): only then are
    /// messages and the half-close worth reporting.
    pub(crate) fn is_recording(&self) -> bool {
        self.0.recording
    }

    /// `count` more request messages arrived.
    pub(crate) fn received(&self, count: u64) {
        if !self.0.recording {
            return;
        }
        self.with(|state| {
            let first = state.received + 1;
            state.received += count;
            state.messages("RECEIVED", first, count);
        });
    }

    /// `count` more response messages went out.
    pub(crate) fn sent(&self, count: u64) {
        if !self.0.recording {
            return;
        }
        self.with(|state| {
            let first = state.sent + 1;
            state.sent += count;
            state.messages("SENT", first, count);
        });
    }

    /// The client finished sending.
    pub(crate) fn half_closed(&self) {
        self.with(|state| state.event("half-close", Vec::new()));
    }

    /// Ends the span with the call's `code`.
    pub(crate) fn finish(&self, code: Code) {
        let name = codes::canonical_name(code);
        self.with(|state| {
            if code == Code::Cancelled {
                state.event("cancellation", Vec::new());
            }
            state.span.set_attribute(KeyValue::new(attribute::RPC_RESPONSE_STATUS_CODE, name));
            if is_server_error(code) {
                state.span.set_attribute(KeyValue::new(attribute::ERROR_TYPE, name));
                state.span.set_status(Status::error(name));
            }
            state.span.end();
        });
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::{Context, trace::TraceContextExt as _};

    use super::*;

    /// Whether `context` continues a trace.
    fn has_parent(context: &Context) -> bool {
        context.span().span_context().is_valid()
    }

    #[test]
    fn a_traceparent_is_read_from_the_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap(),
        );
        headers.insert("tracestate", "vendor=value".parse().unwrap());
        let context = TraceContextPropagator::new().extract(&Headers(&headers));
        assert!(has_parent(&context));
        let span = context.span();
        let parent = span.span_context();
        assert_eq!(parent.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parent.span_id().to_string(), "00f067aa0ba902b7");
        assert!(parent.is_sampled());
        assert_eq!(parent.trace_state().header(), "vendor=value");
    }

    #[test]
    fn a_malformed_traceparent_starts_a_new_trace() {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", "00-not-a-trace-01".parse().unwrap());
        let context = TraceContextPropagator::new().extract(&Headers(&headers));
        assert!(!has_parent(&context));
    }

    #[test]
    fn server_errors_are_the_conventions_list() {
        let errors: Vec<_> = (0..17).map(Code::from_i32).filter(|code| is_server_error(*code)).collect();
        assert_eq!(
            errors,
            [
                Code::Unknown,
                Code::DeadlineExceeded,
                Code::Unimplemented,
                Code::Internal,
                Code::Unavailable,
                Code::DataLoss
            ]
        );
    }
}
