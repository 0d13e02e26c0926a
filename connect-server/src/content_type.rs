//! Answers requests that are not gRPC with HTTP 415, as the gRPC over HTTP/2
//! protocol asks.
//!
//! tonic routes by path alone and answers any content type as if it were gRPC,
//! with HTTP 200 and a `grpc-status`. A plain HTTP client would take that 200
//! for success, so requests whose `content-type` does not begin with
//! `application/grpc` get `415 Unsupported Media Type` before they reach tonic.

use std::task::{Context, Poll};

use futures::future::{Either, Ready, ready};
use http::{HeaderValue, Request, Response, StatusCode, header::CONTENT_TYPE};
use tonic::body::Body;
use tower::{Layer, Service};

/// The prefix every gRPC content type starts with (`application/grpc+proto`, ...).
const GRPC_CONTENT_TYPE: &[u8] = b"application/grpc";

/// Adds the content-type check to a service.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequireGrpcLayer;

impl<S> Layer<S> for RequireGrpcLayer {
    type Service = RequireGrpc<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireGrpc { inner }
    }
}

/// The service made by [`RequireGrpcLayer`].
#[derive(Debug, Clone)]
pub struct RequireGrpc<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for RequireGrpc<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response<Body>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if is_grpc(request.headers().get(CONTENT_TYPE)) {
            Either::Right(self.inner.call(request))
        } else {
            Either::Left(ready(Ok(unsupported_media_type())))
        }
    }
}

/// Whether `content_type` names gRPC: exactly `application/grpc` or it followed by `+` or `;`.
pub fn is_grpc(content_type: Option<&HeaderValue>) -> bool {
    let Some(value) = content_type.map(HeaderValue::as_bytes) else {
        return false;
    };
    match value.strip_prefix(GRPC_CONTENT_TYPE) {
        Some(rest) => rest.is_empty() || rest.starts_with(b"+") || rest.starts_with(b";"),
        None => false,
    }
}

fn unsupported_media_type() -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::UNSUPPORTED_MEDIA_TYPE;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_grpc_content_types() {
        for value in ["application/grpc", "application/grpc+proto", "application/grpc;charset=utf-8"] {
            assert!(is_grpc(Some(&HeaderValue::from_static(value))), "{value}");
        }
    }

    #[test]
    fn rejects_other_content_types() {
        for value in ["application/json", "text/plain", "application/grpcx", "application/grpc-web", ""] {
            assert!(!is_grpc(Some(&HeaderValue::from_static(value))), "{value}");
        }
        assert!(!is_grpc(None));
    }
}
