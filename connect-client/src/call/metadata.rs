//! Call metadata: `-H 'key: value'` and the bearer token add request headers
//! to every call, and `-v` prints the response's headers and trailers to
//! stderr, one per line, as `header {key}: {value}` and `trailer {key}: {value}`
//! (the values as they travel: `-bin` values base64, `grpc-message`
//! percent-encoded). A trailers-only response (a call that failed before
//! sending anything) has only trailers.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use base64::{
    Engine, alphabet,
    engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig, general_purpose::STANDARD_NO_PAD},
};
use bytes::Bytes;
use connect_proto::headers::{GRPC_STATUS, is_reserved};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, combinators::MapFrame};
use tower::Service;

use crate::{error::ClientError, output::Output};

/// Suffix of metadata keys whose values are binary, base64 on the wire.
const BINARY_SUFFIX: &str = "-bin";

/// Accepts base64 with or without padding, as the gRPC spec asks of receivers.
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One `-H` header, ready for the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The lower-case key.
    pub name: HeaderName,
    /// The value as sent: `-bin` values re-encoded as unpadded base64.
    pub value: HeaderValue,
}

/// Parses `key: value`; for `-bin` keys the value is base64 and is checked here.
pub fn parse_header(text: &str) -> Result<Header, String> {
    // A pseudo-header (`:authority: x`) would split at its own colon: check the text.
    if text.trim_start().starts_with(':') {
        return Err(format!("pseudo-headers are set by HTTP/2, not by -H: {text:?}"));
    }
    let (key, value) = text.split_once(':').ok_or_else(|| format!("expected `key: value`, got {text:?}"))?;
    let key = key.trim().to_ascii_lowercase();
    let value = value.trim();
    let name =
        HeaderName::from_bytes(key.as_bytes()).map_err(|_| format!("{key:?} is not a valid metadata key"))?;
    if is_reserved(&name) {
        return Err(format!("{key:?} is reserved by gRPC"));
    }
    let value = if key.ends_with(BINARY_SUFFIX) {
        let bytes =
            LENIENT_BASE64.decode(value).map_err(|error| format!("{key}: value is not base64: {error}"))?;
        HeaderValue::from_str(&STANDARD_NO_PAD.encode(bytes)).expect("base64 is a valid header value")
    } else {
        // gRPC allows only printable ASCII in text values; HTTP would also take bytes above 0x7f.
        if !value.bytes().all(|byte| (0x20..=0x7e).contains(&byte)) {
            return Err(format!("{key}: value must be printable ASCII"));
        }
        HeaderValue::from_str(value).expect("printable ASCII is a valid header value")
    };
    Ok(Header { name, value })
}

/// The `authorization` value for `token`, sensitive so HPACK never indexes it
/// (as tonic's client does for credentials).
pub(crate) fn bearer(token: &str) -> Result<HeaderValue, ClientError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| ClientError::Other("--token must be printable ASCII".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// A transport that adds the `-H` headers and the token to each call and,
/// with `-v`, prints the response metadata.
#[derive(Clone)]
pub struct CallMetadata<S> {
    inner: S,
    headers: Arc<[Header]>,
    authorization: Option<HeaderValue>,
    /// Where `-v` prints; none without `-v`.
    verbose: Option<Output>,
}

impl<S> std::fmt::Debug for CallMetadata<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallMetadata")
            .field("headers", &self.headers)
            .field("bearer", &self.authorization.is_some())
            .field("verbose", &self.verbose.is_some())
            .finish_non_exhaustive()
    }
}

impl<S> CallMetadata<S> {
    /// Wraps `inner`, sending `headers` and `authorization` on every call and
    /// printing the response metadata to `verbose`, if any.
    pub(crate) fn new(
        inner: S,
        headers: Vec<Header>,
        authorization: Option<HeaderValue>,
        verbose: Option<Output>,
    ) -> Self {
        Self { inner, headers: headers.into(), authorization, verbose }
    }
}

/// What a response body does with each frame: with `-v`, prints the trailers.
pub type FrameHook = Box<dyn FnMut(Frame<Bytes>) -> Frame<Bytes> + Send + Sync>;

/// A response body that prints its trailers when they arrive, with `-v`.
pub type PrintTrailers<B> = MapFrame<B, FrameHook>;

impl<S, B> Service<Request<tonic::body::Body>> for CallMetadata<S>
where
    S: Service<Request<tonic::body::Body>, Response = Response<B>>,
    S::Future: Send + 'static,
    B: Body<Data = Bytes>,
{
    type Response = Response<PrintTrailers<B>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<tonic::body::Body>) -> Self::Future {
        add_headers(request.headers_mut(), &self.headers, self.authorization.as_ref());
        // Each call starts a trace of its own unless `-H traceparent: ...` continues one;
        // a traced server names its span in `traceresponse`, which `-v` prints.
        if !request.headers().contains_key(TRACEPARENT) {
            request.headers_mut().insert(TRACEPARENT, new_traceparent());
        }
        let verbose = self.verbose.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            let on_frame: FrameHook = match verbose {
                Some(output) => {
                    // With `grpc-status` already in the headers, they are the trailers.
                    let kind =
                        if response.headers().contains_key(GRPC_STATUS) { "trailer" } else { "header" };
                    output.metadata(kind, response.headers());
                    Box::new(move |frame| print_trailers(&output, frame))
                }
                None => Box::new(|frame| frame),
            };
            Ok(response.map(|inner| inner.map_frame(on_frame)))
        })
    }
}

/// The W3C header a call's trace continues from.
const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");

/// A `traceparent` for a new, sampled trace: random trace and parent ids
/// (never all zero, which the W3C format forbids).
fn new_traceparent() -> HeaderValue {
    let trace = fastrand::u128(1..);
    let parent = fastrand::u64(1..);
    HeaderValue::from_str(&format!("00-{trace:032x}-{parent:016x}-01")).expect("hex digits and dashes")
}

/// Adds the `-H` headers to `headers`, then the token, which replaces any
/// `authorization` given with `-H`.
pub(crate) fn add_headers(headers: &mut HeaderMap, extra: &[Header], authorization: Option<&HeaderValue>) {
    for header in extra {
        headers.append(header.name.clone(), header.value.clone());
    }
    if let Some(value) = authorization {
        headers.insert(http::header::AUTHORIZATION, value.clone());
    }
}

fn print_trailers(output: &Output, frame: Frame<Bytes>) -> Frame<Bytes> {
    if let Some(trailers) = frame.trailers_ref() {
        output.metadata("trailer", trailers);
    }
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_traceparent_is_w3c_shaped_and_fresh() {
        let first = new_traceparent();
        let text = first.to_str().unwrap();
        let parts: Vec<&str> = text.split('-').collect();
        assert_eq!(parts.len(), 4, "{text}");
        assert_eq!((parts[0], parts[1].len(), parts[2].len(), parts[3]), ("00", 32, 16, "01"));
        assert!(text.bytes().all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_ne!(first, new_traceparent());
    }

    #[test]
    fn parses_ascii_headers() {
        let header = parse_header("X-Request-Id:  abc 123 ").unwrap();
        assert_eq!(header.name.as_str(), "x-request-id");
        assert_eq!(header.value, "abc 123");
    }

    #[test]
    fn binary_values_are_base64_with_or_without_padding() {
        assert_eq!(parse_header("trace-bin: AAEC/w==").unwrap().value, "AAEC/w");
        assert_eq!(parse_header("trace-bin: AAEC/w").unwrap().value, "AAEC/w");
        assert_eq!(
            parse_header("trace-bin: not base64!").unwrap_err(),
            "trace-bin: value is not base64: Invalid symbol 32, offset 3."
        );
    }

    #[test]
    fn rejects_malformed_headers() {
        assert_eq!(parse_header("novalue").unwrap_err(), "expected `key: value`, got \"novalue\"");
        assert_eq!(parse_header("bad key: v").unwrap_err(), "\"bad key\" is not a valid metadata key");
        assert_eq!(parse_header("grpc-timeout: 1S").unwrap_err(), "\"grpc-timeout\" is reserved by gRPC");
        assert_eq!(
            parse_header(":authority: example.com").unwrap_err(),
            "pseudo-headers are set by HTTP/2, not by -H: \":authority: example.com\""
        );
        assert_eq!(parse_header("x: caf\u{e9}").unwrap_err(), "x: value must be printable ASCII");
    }
}
