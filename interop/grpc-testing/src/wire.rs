//! What the interop cases need to see on the wire that tonic does not show
//! a handler or a client: whether each message arrived compressed (the
//! compressed flag of its gRPC frame), and the echo of the
//! `x-grpc-test-echo-*` request headers, the trailing one in the trailers.

use std::{
    collections::VecDeque,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
};

use bytes::Buf;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use connect_proto::framing::FrameCounter;

use crate::{ECHO_INITIAL, ECHO_TRAILING};

/// The compressed flags of the messages read so far, oldest first; a request
/// (or response) extension, so handlers (or clients) can take one flag per
/// message they read.
#[derive(Debug, Clone, Default)]
pub struct CompressedFlags(Arc<Mutex<VecDeque<bool>>>);

impl CompressedFlags {
    /// Whether the oldest message not yet asked about was compressed (`None`: no message seen).
    pub fn next(&self) -> Option<bool> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).pop_front()
    }

    fn push(&self, compressed: bool) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push_back(compressed);
    }
}

pin_project! {
    /// A body that records the compressed flag of every message it carries.
    #[derive(Debug)]
    pub struct ScannedBody<B> {
        #[pin]
        inner: B,
        scanner: FrameCounter,
        flags: CompressedFlags,
    }
}

impl<B> Body for ScannedBody<B>
where
    B: Body,
    B::Data: Buf,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let flags = &*this.flags;
            this.scanner.feed_each(data.chunk(), |compressed| flags.push(compressed));
            // A `Buf` may hold its bytes in several chunks; gRPC bodies from hyper hold one.
            debug_assert_eq!(data.chunk().len(), data.remaining());
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project! {
    /// A response body with one more header in its trailers.
    #[derive(Debug)]
    pub struct EchoTrailers<B> {
        #[pin]
        inner: B,
        extra: Option<(HeaderName, HeaderValue)>,
    }
}

impl<B: Body> Body for EchoTrailers<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match polled {
            Poll::Ready(Some(Ok(frame))) if frame.is_trailers() => {
                let mut trailers = frame.into_trailers().unwrap_or_default();
                if let Some((name, value)) = this.extra.take() {
                    trailers.insert(name, value);
                }
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The echo headers of a request: what goes in the response headers and trailers.
#[derive(Debug, Default)]
pub struct Echo {
    initial: Option<HeaderValue>,
    trailing: Option<HeaderValue>,
}

impl Echo {
    /// The `x-grpc-test-echo-*` values of `headers`.
    pub fn of(headers: &HeaderMap) -> Self {
        Self { initial: headers.get(ECHO_INITIAL).cloned(), trailing: headers.get(ECHO_TRAILING).cloned() }
    }

    /// `response` with the echoed values: the initial one in its headers, the
    /// trailing one in its trailers, or in its headers when the response is
    /// trailers-only (its headers already carry `grpc-status`).
    pub fn apply<B: Body>(self, response: Response<B>) -> Response<EchoTrailers<B>> {
        let (mut parts, body) = response.into_parts();
        if let Some(value) = self.initial {
            parts.headers.insert(HeaderName::from_static(ECHO_INITIAL), value);
        }
        let mut extra = self.trailing.map(|value| (HeaderName::from_static(ECHO_TRAILING), value));
        if parts.headers.contains_key("grpc-status")
            && let Some((name, value)) = extra.take()
        {
            parts.headers.insert(name, value);
        }
        Response::from_parts(parts, EchoTrailers { inner: body, extra })
    }
}

impl<B> ScannedBody<B> {
    /// `body`, scanned, with its flags added to `extensions`.
    fn new(inner: B, extensions: &mut http::Extensions) -> Self {
        let flags = CompressedFlags::default();
        extensions.insert(flags.clone());
        Self { inner, scanner: FrameCounter::default(), flags }
    }
}

/// `request` with its body scanned for compressed flags, and the flags as an extension.
pub fn scan_request<B>(request: Request<B>) -> Request<ScannedBody<B>> {
    let (mut parts, body) = request.into_parts();
    let body = ScannedBody::new(body, &mut parts.extensions);
    Request::from_parts(parts, body)
}

/// `response` with its body scanned for compressed flags, and the flags as an
/// extension (the client's side of [`scan_request`]).
pub fn scan_response<B>(response: Response<B>) -> Response<ScannedBody<B>> {
    let (mut parts, body) = response.into_parts();
    let body = ScannedBody::new(body, &mut parts.extensions);
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use http_body_util::Empty;

    use super::*;

    fn echo_request() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ECHO_INITIAL, HeaderValue::from_static("test_initial_metadata_value"));
        headers.insert(ECHO_TRAILING, HeaderValue::from_static("q6ur"));
        headers
    }

    #[test]
    fn a_trailers_only_response_carries_both_echoes_in_its_headers() {
        let response = Response::builder().header("grpc-status", "2").body(()).expect("response");
        let response = Echo::of(&echo_request()).apply(response.map(|()| Empty::<bytes::Bytes>::new()));
        assert_eq!(response.headers()[ECHO_INITIAL], "test_initial_metadata_value");
        assert_eq!(response.headers()[ECHO_TRAILING], "q6ur");
        assert!(response.body().extra.is_none(), "nothing left for the trailers");
    }

    #[test]
    fn a_response_with_a_body_keeps_the_trailing_echo_for_its_trailers() {
        let response = Response::new(Empty::<bytes::Bytes>::new());
        let response = Echo::of(&echo_request()).apply(response);
        assert_eq!(response.headers()[ECHO_INITIAL], "test_initial_metadata_value");
        assert!(!response.headers().contains_key(ECHO_TRAILING));
        let extra = response.body().extra.as_ref().map(|(name, value)| (name.as_str(), value.to_str().ok()));
        assert_eq!(extra, Some((ECHO_TRAILING, Some("q6ur"))));
    }

    #[test]
    fn flags_are_read_across_chunk_boundaries() {
        // Three frames: compressed 3 bytes, uncompressed 0 bytes, compressed 1 byte.
        let bytes = [1, 0, 0, 0, 3, 9, 9, 9, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 7];
        for split in 0..bytes.len() {
            let mut scanner = FrameCounter::default();
            let mut flags = Vec::new();
            scanner.feed_each(&bytes[..split], |flag| flags.push(flag));
            scanner.feed_each(&bytes[split..], |flag| flags.push(flag));
            assert_eq!(flags, [true, false, true], "split at {split}");
        }
    }
}
