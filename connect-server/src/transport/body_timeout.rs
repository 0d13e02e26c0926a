//! The read timeout of a request body: a client that stops sending in the
//! middle of a message holds a stream (over HTTP/1.1, a whole connection)
//! and the memory of what it sent so far, for ever. nginx closes such a
//! client after 60 s (`client_body_timeout`); here the call ends after
//! `--body-read-timeout` without a byte, with `DEADLINE_EXCEEDED`: the
//! server gave the request that long to arrive, as a deadline would.
//!
//! The clock runs only while a message is incomplete: a stream that pauses
//! between whole messages is waiting for its client's next move, which the
//! admission budget and keepalive govern, not this timeout. A unary Connect
//! body is one message from its first byte to its end.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tonic::Status;

use connect_proto::framing::FrameCounter;

/// What part of a body the clock runs on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Watch {
    /// gRPC framing: while a message is incomplete.
    Messages,
    /// The whole body, until its end (a Connect unary message).
    Whole,
}

pin_project! {
    /// `inner`, failing with `DEADLINE_EXCEEDED` when no frame arrives within
    /// `timeout` while the clock runs (see [`Watch`]).
    pub(crate) struct BodyTimeout<B> {
        #[pin]
        inner: B,
        timeout: Duration,
        watch: Watch,
        frames: FrameCounter,
        // Made on the first wait and reset after: the usual request is at hand and never waits.
        sleep: Option<Pin<Box<Sleep>>>,
        // Whether `sleep` is armed for the current wait.
        waiting: bool,
    }
}

impl<B> BodyTimeout<B> {
    pub(crate) fn new(inner: B, timeout: Duration, watch: Watch) -> Self {
        Self { inner, timeout, watch, frames: FrameCounter::default(), sleep: None, waiting: false }
    }
}

/// The status of a body that stalled for `timeout`.
pub(crate) fn stalled(timeout: Duration) -> Status {
    Status::deadline_exceeded(format!(
        "the request body stalled: no bytes for {} ms (--body-read-timeout)",
        timeout.as_millis()
    ))
}

impl<B> Body for BodyTimeout<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                *this.waiting = false;
                if let Some(Ok(frame)) = &frame
                    && let Some(data) = frame.data_ref()
                    && matches!(this.watch, Watch::Messages)
                {
                    this.frames.feed(data);
                }
                Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
            }
            Poll::Pending => {
                let runs = match this.watch {
                    Watch::Whole => true,
                    Watch::Messages => this.frames.within_message(),
                };
                if !runs {
                    return Poll::Pending;
                }
                if !*this.waiting {
                    let deadline = Instant::now() + *this.timeout;
                    match this.sleep {
                        Some(sleep) => sleep.as_mut().reset(deadline),
                        None => *this.sleep = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                    *this.waiting = true;
                }
                let sleep = this.sleep.as_mut().expect("armed above");
                ready!(sleep.as_mut().poll(cx));
                // tonic finds the status in the error, as it would a handler's.
                Poll::Ready(Some(Err(Box::new(stalled(*this.timeout)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's service whose request bodies get [`BodyTimeout`] on their messages.
#[derive(Debug, Clone)]
pub(crate) struct BodyTimeouts<S> {
    inner: S,
    timeout: Duration,
}

impl<S> BodyTimeouts<S> {
    pub(crate) fn new(inner: S, timeout: Duration) -> Self {
        Self { inner, timeout }
    }
}

impl<S, B> tower::Service<http::Request<B>> for BodyTimeouts<S>
where
    S: tower::Service<http::Request<BodyTimeout<B>>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let timeout = self.timeout;
        self.inner.call(request.map(|body| BodyTimeout::new(body, timeout, Watch::Messages)))
    }
}
