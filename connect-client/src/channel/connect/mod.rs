//! The Connect protocol (connectrpc.com/docs/protocol) as a decorator on the
//! transport: each gRPC call tonic makes is sent as a Connect call, and the
//! Connect answer is handed back to tonic as a gRPC response, so the
//! commands above are the same for every protocol.
//!
//! - Unary calls ([`unary`]) send the bare message (`application/proto`, or
//!   `application/json` with `--codec json`) and read an error as Connect's
//!   JSON with an HTTP status; it becomes a trailers-only gRPC response with
//!   the same code, message and details.
//! - Streams ([`stream`]) keep gRPC's length prefix (Connect's envelope is the
//!   same) and end with an end-of-stream message, whose error and metadata
//!   become the gRPC trailers.
//!
//! Which of the two a call is, and its message types for JSON, come from the
//! method's descriptor: the one `call` attaches to its request, else the
//! services the client knows (ConnectService, health, reflection).

mod json;
mod stream;
mod unary;

pub(crate) use stream::end_of_stream;

use std::{
    sync::OnceLock,
    task::{Context, Poll},
    time::Duration,
};

use base64::{
    Engine, alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
};
use bytes::Bytes;
use connect_proto::{
    codes,
    headers::{APPLICATION_GRPC, CONNECT_PROTOCOL_VERSION, CONNECT_TIMEOUT_MS, GRPC_TIMEOUT, metadata},
    timeout,
};
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header};
use prost::Message;
use prost_reflect::{DescriptorPool, MethodDescriptor};
use serde_json::Value;
use tonic::{Code, Status, body::Body, metadata::MetadataMap};
use tower::{BoxError, Service, ServiceExt};

use super::protocol::{Codec, Transport};

/// Most bytes of a response message (tonic's own default decoding limit), and
/// of a unary error body, the translation reads.
const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// Base64 as Connect's error details carry it, padded or not.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Sends each gRPC call through `inner` as a Connect call.
#[derive(Debug, Clone)]
pub(crate) struct Connect {
    inner: Transport,
    codec: Codec,
    /// The connection is HTTP/1.1: no bidirectional streams.
    http1: bool,
}

impl Connect {
    pub(crate) fn new(inner: Transport, codec: Codec, http1: bool) -> Self {
        Self { inner, codec, http1 }
    }
}

impl Service<Request<Body>> for Connect {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<Body>, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The ready clone is the one to call (tower's rule for cloned services).
        let ready = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, ready);
        let (codec, http1) = (self.codec, self.http1);
        let method = request
            .extensions()
            .get::<MethodDescriptor>()
            .cloned()
            .or_else(|| known_method(request.uri().path()));
        Box::pin(async move {
            let Some(method) = method else {
                let path = request.uri().path();
                return Ok(failed(Status::internal(format!(
                    "no descriptor of {path}: cannot call it over Connect"
                ))));
            };
            match (method.is_client_streaming(), method.is_server_streaming()) {
                (false, false) => unary::call(inner, request, &method, codec).await,
                // Not UNIMPLEMENTED: for reflection that would read as "the server has none".
                (true, true) if http1 => Ok(failed(Status::failed_precondition(no_bidi(&method)))),
                _ => stream::call(inner, request, &method, codec).await,
            }
        })
    }
}

/// Why the bidirectional stream `method` cannot be called over HTTP/1.1.
fn no_bidi(method: &MethodDescriptor) -> String {
    let mut why = format!(
        "{} is a bidirectional stream, which the Connect protocol carries over HTTP/2 only: drop --http1",
        method.full_name()
    );
    if method.parent_service().full_name().starts_with("grpc.reflection.") {
        why.push_str(", or give the schema with --proto or --protoset instead of reflection");
    }
    why
}

/// The descriptor of the method at `path` (`/Service/Method`) among the
/// services every command may call.
fn known_method(path: &str) -> Option<MethodDescriptor> {
    static KNOWN: OnceLock<DescriptorPool> = OnceLock::new();
    let pool = KNOWN.get_or_init(|| {
        let mut pool = DescriptorPool::new();
        for set in [
            connect_proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ] {
            // Compiled in and decoded by tests: a failure here would be a build defect.
            pool.decode_file_descriptor_set(set).expect("a compiled-in descriptor set");
        }
        pool
    });
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    pool.get_service_by_name(service)?.methods().find(|found| found.name() == method)
}

/// The headers of the Connect request for a gRPC request with `grpc`: its
/// metadata, the protocol version, the deadline and `content_type`.
fn request_headers(grpc: &HeaderMap, content_type: &'static str) -> HeaderMap {
    let mut headers = metadata(grpc);
    // Connect takes Host and User-Agent as they are: keep the transport's own.
    if let Some(agent) = grpc.get(header::USER_AGENT) {
        headers.insert(header::USER_AGENT, agent.clone());
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CONNECT_PROTOCOL_VERSION, HeaderValue::from_static("1"));
    if let Some(deadline) = grpc.get(GRPC_TIMEOUT).and_then(|value| timeout::parse(value.to_str().ok()?)) {
        headers.insert(CONNECT_TIMEOUT_MS, timeout_ms(deadline));
    }
    headers
}

/// `connect-timeout-ms` for `deadline`: whole milliseconds, rounded up so a
/// deadline never shrinks to zero, at most the protocol's 10 digits.
pub(crate) fn timeout_ms(deadline: Duration) -> HeaderValue {
    let millis = deadline.as_nanos().div_ceil(1_000_000).min(9_999_999_999);
    HeaderValue::from(u64::try_from(millis).unwrap_or(9_999_999_999))
}

/// A trailers-only gRPC response: the call failed with `status`.
fn failed(status: Status) -> Response<Body> {
    status.into_http()
}

/// `status`'s `grpc-status`, `grpc-message` and `grpc-status-details-bin`, in that order.
fn status_headers(status: Status) -> HeaderMap {
    let mut headers = HeaderMap::new();
    // Not `remove`: it would move the last header into the removed one's place.
    headers.extend(
        status
            .into_http::<()>()
            .into_parts()
            .0
            .headers
            .into_iter()
            .filter(|(name, _)| name.as_ref() != Some(&header::CONTENT_TYPE)),
    );
    headers
}

/// gRPC response headers: the content type, then `metadata`.
fn grpc_headers(metadata: HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(metadata.len() + 1);
    headers.insert(header::CONTENT_TYPE, APPLICATION_GRPC);
    headers.extend(metadata);
    headers
}

/// The status of Connect's JSON error `error`; `None` when it is not one (no
/// known `code`).
fn status_of_error(error: &Value, metadata: MetadataMap) -> Option<Status> {
    let code = codes::from_connect_name(error.get("code")?.as_str()?)?;
    let message = error.get("message").and_then(Value::as_str).unwrap_or_default();
    let details = error.get("details").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let details: Vec<prost_types::Any> = details
        .iter()
        .filter_map(|detail| {
            let type_name = detail.get("type")?.as_str()?;
            let value = LENIENT_BASE64.decode(detail.get("value")?.as_str()?).ok()?;
            Some(prost_types::Any { type_url: format!("type.googleapis.com/{type_name}"), value })
        })
        .collect();
    let encoded = if details.is_empty() {
        Bytes::new()
    } else {
        let status = tonic_types::pb::Status { code: code as i32, message: message.to_owned(), details };
        Bytes::from(status.encode_to_vec())
    };
    Some(Status::with_details_and_metadata(code, message, encoded, metadata))
}

/// The status of a Connect unary call that failed with HTTP `status` and
/// `body`: Connect's JSON error when the body is one, else [`status_of_http`].
pub(crate) fn unary_error(status: StatusCode, body: &[u8], metadata: MetadataMap) -> Status {
    serde_json::from_slice(body)
        .ok()
        .and_then(|error| status_of_error(&error, metadata.clone()))
        .unwrap_or_else(|| status_of_http(status, body, metadata))
}

/// The status of a response that failed with HTTP `status` and `body` not
/// Connect's JSON error: the protocol's code for the HTTP status, and what
/// the body starts with.
fn status_of_http(status: StatusCode, body: &[u8], metadata: MetadataMap) -> Status {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let message = if text.is_empty() {
        format!("HTTP {status} without a Connect error")
    } else {
        format!("HTTP {status} without a Connect error: {text}")
    };
    Status::with_metadata(codes::from_http_status(status), message, metadata)
}

/// Checks that a response's `content-type` is `expected` (parameters aside).
fn check_content_type(headers: &HeaderMap, expected: &str) -> Result<(), Status> {
    let got = headers.get(header::CONTENT_TYPE).map(|value| String::from_utf8_lossy(value.as_bytes()));
    let matches = got
        .as_deref()
        .and_then(|value| value.split(';').next())
        .is_some_and(|value| value.trim().eq_ignore_ascii_case(expected));
    if matches {
        return Ok(());
    }
    let got = got.as_deref().unwrap_or("none");
    Err(Status::new(PROTOCOL_ERROR, format!("the server answered content-type {got}, not {expected}")))
}

/// Appends the `metadata` of an end-of-stream message (`{"key": ["value"]}`)
/// to `trailers`, skipping what is not a valid header.
fn append_metadata(trailers: &mut HeaderMap, metadata: Option<&Value>) {
    let Some(metadata) = metadata.and_then(Value::as_object) else { return };
    for (name, values) in metadata {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else { continue };
        for value in values.as_array().map(Vec::as_slice).unwrap_or_default() {
            if let Some(value) = value.as_str().and_then(|value| HeaderValue::from_str(value).ok()) {
                trailers.append(name.clone(), value);
            }
        }
    }
}

/// The code a call ends with when the server broke the protocol.
const PROTOCOL_ERROR: Code = Code::Internal;

/// Calls `inner` once it is ready.
async fn send(inner: Transport, request: Request<Body>) -> Result<Response<Body>, BoxError> {
    inner.oneshot(request).await
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;

    #[test]
    fn deadlines_round_up_to_milliseconds() {
        assert_eq!(timeout_ms(Duration::from_micros(1)), "1");
        assert_eq!(timeout_ms(Duration::from_millis(1500)), "1500");
        assert_eq!(timeout_ms(Duration::from_secs(100_000_000)), "9999999999");
    }

    #[test]
    fn requests_keep_metadata_and_carry_connects_headers() {
        let mut grpc = HeaderMap::new();
        grpc.insert("content-type", HeaderValue::from_static("application/grpc"));
        grpc.insert("te", HeaderValue::from_static("trailers"));
        grpc.insert("grpc-timeout", HeaderValue::from_static("250m"));
        grpc.insert("x-request-id", HeaderValue::from_static("abc"));
        let headers = request_headers(&grpc, "application/proto");
        assert_eq!(headers.len(), 4);
        assert_eq!(headers["content-type"], "application/proto");
        assert_eq!(headers["connect-protocol-version"], "1");
        assert_eq!(headers["connect-timeout-ms"], "250");
        assert_eq!(headers["x-request-id"], "abc");
    }

    #[test]
    fn errors_keep_code_message_and_details() {
        let bad_request = tonic_types::ErrorDetails::with_bad_request_violation("count", "too many");
        let sent = Status::with_error_details(Code::InvalidArgument, "count must be at most 5", bad_request);
        let any = tonic_types::pb::Status::decode(sent.details()).unwrap().details.remove(0);
        let error = serde_json::json!({
            "code": "invalid_argument",
            "message": "count must be at most 5",
            "details": [{"type": "google.rpc.BadRequest", "value": base64::engine::general_purpose::STANDARD_NO_PAD.encode(&any.value)}],
        });
        let status = status_of_error(&error, MetadataMap::new()).unwrap();
        assert_eq!((status.code(), status.message()), (Code::InvalidArgument, "count must be at most 5"));
        assert_eq!(status.get_details_bad_request().unwrap().field_violations[0].field, "count");
        assert!(status_of_error(&serde_json::json!({"code": "nope"}), MetadataMap::new()).is_none());
        assert!(status_of_error(&serde_json::json!([1]), MetadataMap::new()).is_none());
    }

    #[test]
    fn other_http_errors_get_the_protocols_code() {
        let status =
            status_of_http(StatusCode::BAD_GATEWAY, b"<html>\n  bad gateway\n</html>", MetadataMap::new());
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            status.message(),
            "HTTP 502 Bad Gateway without a Connect error: <html> bad gateway </html>"
        );
    }

    #[test]
    fn knows_the_commands_methods() {
        assert!(known_method("/ConnectService/UnaryRPC").is_some());
        assert!(known_method("/grpc.health.v1.Health/Check").is_some());
        assert!(
            known_method("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
                .unwrap()
                .is_server_streaming()
        );
        assert!(known_method("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo").is_some());
        assert!(known_method("/Nope/Nope").is_none());
    }
}
