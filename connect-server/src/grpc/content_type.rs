//! Which requests are gRPC, and the answer to those that are not: HTTP 415,
//! as the gRPC over HTTP/2 protocol asks.
//!
//! tonic routes by path alone and answers any content type as if it were gRPC,
//! with HTTP 200 and a `grpc-status`. A plain HTTP client would take that 200
//! for success, so the observe layer answers requests whose `content-type`
//! does not begin with `application/grpc` with `415 Unsupported Media Type`
//! before they reach tonic.

use connect_proto::headers::APPLICATION_GRPC;
use http::{HeaderValue, Response, StatusCode};

/// Whether `content_type` names gRPC: exactly `application/grpc` or it followed by `+` or `;`.
pub(crate) fn is_grpc(content_type: Option<&HeaderValue>) -> bool {
    let Some(value) = content_type.map(HeaderValue::as_bytes) else {
        return false;
    };
    // Every gRPC content type starts with it (`application/grpc+proto`, ...).
    match value.strip_prefix(APPLICATION_GRPC.as_bytes()) {
        Some(rest) => rest.is_empty() || rest.starts_with(b"+") || rest.starts_with(b";"),
        None => false,
    }
}

/// The answer to a request that is not gRPC: HTTP 415 with an empty body.
pub(crate) fn unsupported_media_type<B: Default>() -> Response<B> {
    let mut response = Response::new(B::default());
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
