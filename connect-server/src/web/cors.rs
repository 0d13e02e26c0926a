//! CORS for pages on other origins (`--cors-allow-origin`), with
//! `tower-http`: preflights answered, and the headers gRPC-Web and Connect
//! clients send and read allowed and exposed. No origin given: no CORS
//! headers at all, and browsers keep other sites' pages out.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer, ExposeHeaders};

/// The response headers a page may read.
const EXPOSED: [&str; 10] = [
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "grpc-encoding",
    "content-encoding",
    "connect-content-encoding",
    "x-request-id",
    "x-served-by",
    "x-message-count",
    "trailer-x-message-count",
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
    let exposed: Vec<HeaderName> = EXPOSED.iter().map(|name| HeaderName::from_static(name)).collect();
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::POST, Method::GET])
            // Call metadata is any header the page sets (`authorization`, `x-request-id`, ...).
            .allow_headers(AllowHeaders::mirror_request())
            .expose_headers(ExposeHeaders::list(exposed))
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
