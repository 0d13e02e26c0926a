//! Call metadata on the command line: `-H 'key: value'` adds request headers
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
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, combinators::MapFrame};
use tower::Service;

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
    if key.starts_with("grpc-") {
        return Err(format!("{key:?} is reserved by gRPC"));
    }
    let name =
        HeaderName::from_bytes(key.as_bytes()).map_err(|_| format!("{key:?} is not a valid metadata key"))?;
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

/// A transport that adds the `-H` headers to each call and, with `-v`, prints the response metadata.
#[derive(Debug, Clone)]
pub struct CallMetadata<S> {
    inner: S,
    headers: Arc<[Header]>,
    verbose: bool,
}

impl<S> CallMetadata<S> {
    /// Wraps `inner`, sending `headers` on every call and printing metadata when `verbose`.
    pub fn new(inner: S, headers: Vec<Header>, verbose: bool) -> Self {
        Self { inner, headers: headers.into(), verbose }
    }
}

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
        for header in self.headers.iter() {
            request.headers_mut().append(header.name.clone(), header.value.clone());
        }
        let verbose = self.verbose;
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            if verbose {
                // With `grpc-status` already in the headers, they are the trailers.
                let kind = if response.headers().contains_key("grpc-status") { "trailer" } else { "header" };
                print_metadata(kind, response.headers());
            }
            let on_frame: fn(Frame<Bytes>) -> Frame<Bytes> = if verbose { print_trailers } else { unchanged };
            Ok(response.map(|inner| inner.map_frame(on_frame)))
        })
    }
}

fn print_metadata(kind: &str, headers: &HeaderMap) {
    for (key, value) in headers {
        eprintln!("{kind} {key}: {}", String::from_utf8_lossy(value.as_bytes()));
    }
}

/// A response body that prints its trailers when they arrive, with `-v`
/// (a plain `fn`, so the type can be named in [`CallMetadata`]'s `Service` impl).
pub type PrintTrailers<B> = MapFrame<B, fn(Frame<Bytes>) -> Frame<Bytes>>;

fn print_trailers(frame: Frame<Bytes>) -> Frame<Bytes> {
    if let Some(trailers) = frame.trailers_ref() {
        print_metadata("trailer", trailers);
    }
    frame
}

fn unchanged(frame: Frame<Bytes>) -> Frame<Bytes> {
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

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
