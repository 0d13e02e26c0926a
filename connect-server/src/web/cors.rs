//! CORS for pages on other origins (`--cors-allow-origin`), with
//! `tower-http`: preflights answered, and the headers gRPC-Web and Connect
//! clients send and read allowed and exposed. No origin given: no CORS
//! headers at all, and browsers keep other sites' pages out.

use std::time::Duration;

use connect_proto::headers::{
    CONNECT_CONTENT_ENCODING, GRPC_ENCODING, GRPC_MESSAGE, GRPC_STATUS, GRPC_STATUS_DETAILS_BIN,
    X_MESSAGE_COUNT, X_REQUEST_ID, X_SERVED_BY,
};
use http::{HeaderName, HeaderValue, Method, header::CONTENT_ENCODING};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer, ExposeHeaders};

/// The response headers a page may read.
const EXPOSED: [HeaderName; 10] = [
    GRPC_STATUS,
    GRPC_MESSAGE,
    GRPC_STATUS_DETAILS_BIN,
    GRPC_ENCODING,
    CONTENT_ENCODING,
    CONNECT_CONTENT_ENCODING,
    X_REQUEST_ID,
    X_SERVED_BY,
    X_MESSAGE_COUNT,
    // `x-message-count` as a Connect unary response carries it: a header with Connect's `trailer-` prefix.
    HeaderName::from_static("trailer-x-message-count"),
];

/// How long a browser may cache a preflight's answer.
const MAX_AGE: Duration = Duration::from_secs(2 * 60 * 60);

/// The CORS layer for `origins` (`*`: any origin), or `None` when there are none.
pub(crate) fn layer(origins: &[String]) -> anyhow::Result<Option<CorsLayer>> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allow_origin = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        let parsed = origins
            .iter()
            .map(|origin| {
                HeaderValue::from_str(origin.trim_end_matches('/'))
                    .map_err(|_| anyhow::anyhow!("--cors-allow-origin {origin:?} is not a valid origin"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        AllowOrigin::list(parsed)
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::POST, Method::GET])
            // Call metadata is any header the page sets (`authorization`, `x-request-id`, ...).
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers(ExposeHeaders::list(EXPOSED))
            .max_age(MAX_AGE),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_without_origins_and_invalid_ones_refused() {
        assert!(layer(&[]).unwrap().is_none());
        assert!(layer(&["*".into()]).unwrap().is_some());
        let error = layer(&["http://a\nb".into()]).unwrap_err();
        assert_eq!(error.to_string(), "--cors-allow-origin \"http://a\\nb\" is not a valid origin");
    }
}
