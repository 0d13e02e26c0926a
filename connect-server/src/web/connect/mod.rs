//! The Connect protocol (connectrpc.com/docs/protocol), translated at the
//! edge: a Connect request becomes a gRPC request to the unchanged service
//! stack, and its gRPC response becomes the Connect response. Unary calls
//! carry one bare message and answer errors as JSON with an HTTP status;
//! streams carry enveloped messages and end with an end-of-stream message.
//! Binary messages pass through as they are (Connect's envelope is gRPC's
//! length prefix); JSON ones are converted with the server's own schema.

mod error;
mod stream;
mod unary;

use std::{convert::Infallible, sync::Arc, time::Duration};

use connect_proto::{
    headers::{CONNECT_PROTOCOL_VERSION, CONNECT_TIMEOUT_MS, insert_grpc_request_headers, metadata},
    timeout,
};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version, header};
use tonic::{Status, body::Body};
use tower::{Service, ServiceExt};

use super::{Arrived, Protocol, WebShared, compression::Encoding, protocol::Codec};

/// Whether the call is unary or a stream, and how its messages are encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape {
    Unary(Codec),
    Stream(Codec),
}

/// Serves one Connect call through `inner`, the gRPC service stack.
pub(crate) async fn call<S, B>(
    inner: S,
    shared: Arc<WebShared>,
    request: Request<hyper::body::Incoming>,
    shape: Shape,
) -> Result<Response<Body>, Infallible>
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible>,
    B: http_body::Body<Data = bytes::Bytes, Error = Status> + Send + 'static,
{
    if request.method() != Method::POST {
        // Connect's GET form is for methods marked idempotent; none here is.
        let mut refused = Response::new(Body::empty());
        *refused.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        refused.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
        return Ok(refused);
    }
    if let Some(refused) = refuse_shape(&shared, &request, shape) {
        return Ok(refused);
    }
    Ok(match shape {
        Shape::Unary(codec) => unary::serve(inner, &shared, request, codec).await,
        Shape::Stream(codec) => stream::serve(inner, shared, request, codec).await,
    })
}

/// The answer to a call whose content type does not fit its method, as
/// connect-go answers it: a unary content type for a streaming method (or the
/// reverse) is HTTP 415, a bidirectional stream over HTTP/1.1 is HTTP 505.
fn refuse_shape<B>(shared: &WebShared, request: &Request<B>, shape: Shape) -> Option<Response<Body>> {
    let method = shared.schema.method(request.uri().path())?;
    let streaming = method.is_client_streaming() || method.is_server_streaming();
    let (status, text) = match shape {
        Shape::Unary(_) if streaming => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a streaming method: use application/connect+proto or +json\n",
        ),
        Shape::Stream(_) if !streaming => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a unary method: use application/proto or application/json\n",
        ),
        Shape::Stream(_)
            if method.is_client_streaming()
                && method.is_server_streaming()
                && request.version() < Version::HTTP_2 =>
        {
            (StatusCode::HTTP_VERSION_NOT_SUPPORTED, "a bidirectional stream needs HTTP/2\n")
        }
        _ => return None,
    };
    let mut refused =
        Response::new(Body::new(http_body_util::Full::new(bytes::Bytes::from_static(text.as_bytes()))));
    *refused.status_mut() = status;
    refused.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    Some(refused)
}

/// The gRPC request headers for a Connect call with `headers`: the call's
/// metadata as it came, and gRPC's own request headers; the reserved ones the
/// client sent (Connect's, gRPC's, HTTP's) are left behind.
fn grpc_headers(headers: &HeaderMap) -> HeaderMap {
    let mut grpc = metadata(headers);
    insert_grpc_request_headers(&mut grpc);
    grpc
}

/// Checks the protocol's own headers: the version, when sent, and the
/// deadline, returned as a `grpc-timeout`.
fn protocol_headers(headers: &HeaderMap) -> Result<Option<HeaderValue>, Status> {
    if let Some(version) = headers.get(CONNECT_PROTOCOL_VERSION)
        && version != "1"
    {
        return Err(Status::invalid_argument(format!(
            "connect-protocol-version must be 1, not {:?}",
            String::from_utf8_lossy(version.as_bytes())
        )));
    }
    headers.get(CONNECT_TIMEOUT_MS).map(grpc_timeout).transpose()
}

/// A request body that fails at once with `status`: a request the translation
/// cannot make sense of still goes through the stack with it, so the call is
/// logged, counted and answered (with its request id) like any failed call.
fn failing(status: Status) -> Body {
    let failed = futures::stream::once(std::future::ready(Err::<http_body::Frame<bytes::Bytes>, _>(status)));
    Body::new(http_body_util::StreamBody::new(failed))
}

/// `connect-timeout-ms` (at most 10 digits) as a `grpc-timeout` (at most 8).
fn grpc_timeout(value: &HeaderValue) -> Result<HeaderValue, Status> {
    let text = value.to_str().unwrap_or_default();
    let millis: u64 = match text.parse() {
        Ok(millis) if text.len() <= 10 && text.bytes().all(|b| b.is_ascii_digit()) => millis,
        _ => {
            return Err(Status::invalid_argument(format!(
                "connect-timeout-ms must be a positive integer of at most 10 digits, not {text:?}"
            )));
        }
    };
    Ok(timeout::encode(Duration::from_millis(millis)))
}

/// The compression a header names (`content-encoding`, `connect-content-encoding`).
fn encoding_of(headers: &HeaderMap, name: &HeaderName) -> Result<Option<Encoding>, Status> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => Encoding::parse(value.to_str().unwrap_or("?")),
    }
}

/// The first compression an accept header lists that the server speaks.
fn accepted_encoding(headers: &HeaderMap, name: &HeaderName) -> Option<Encoding> {
    headers.get(name).and_then(|value| value.to_str().ok()).and_then(Encoding::first_accepted)
}

/// The metadata of a gRPC response's headers: what is not gRPC's or HTTP's own.
fn response_metadata(headers: &HeaderMap) -> HeaderMap {
    metadata(headers)
}

/// The request extensions every translated call carries.
fn mark(request: &mut Request<Body>) {
    request.extensions_mut().insert(Arrived::Via(Protocol::Connect));
}

/// Calls `inner` once with `request` (the services here are always ready).
async fn call_inner<S, B>(mut inner: S, request: Request<Body>) -> Response<B>
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible>,
{
    match inner.ready().await {
        Ok(ready) => match ready.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        },
        Err(never) => match never {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_become_grpc_timeouts() {
        let timeout = |text: &'static str| grpc_timeout(&HeaderValue::from_static(text));
        assert_eq!(timeout("250").unwrap(), "250m");
        assert_eq!(timeout("99999999").unwrap(), "99999999m");
        assert_eq!(timeout("9999999999").unwrap(), "10000000S");
        for bad in ["", "-1", "1.5", "12345678901", "+5", "abc"] {
            let error = timeout(bad).unwrap_err();
            assert_eq!(error.code(), tonic::Code::InvalidArgument, "{bad:?}");
        }
    }

    #[test]
    fn keeps_metadata_and_drops_the_protocol() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("connect-protocol-version", HeaderValue::from_static("1"));
        headers.insert("connect-timeout-ms", HeaderValue::from_static("1500"));
        headers.insert("authorization", HeaderValue::from_static("Bearer t"));
        headers.insert("x-request-id", HeaderValue::from_static("abc"));
        let grpc = grpc_headers(&headers);
        assert_eq!(grpc["content-type"], "application/grpc");
        assert_eq!(protocol_headers(&headers).unwrap(), Some(HeaderValue::from_static("1500m")));
        assert_eq!(grpc["authorization"], "Bearer t");
        assert_eq!(grpc["x-request-id"], "abc");
        assert!(grpc.get("connect-timeout-ms").is_none());
        assert!(grpc.get("connect-protocol-version").is_none());
        headers.insert("connect-protocol-version", HeaderValue::from_static("2"));
        assert_eq!(
            protocol_headers(&headers).unwrap_err().message(),
            "connect-protocol-version must be 1, not \"2\""
        );
    }
}
