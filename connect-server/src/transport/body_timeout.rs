//! The limits on a request body while a message is incomplete: how long it
//! may go without a byte, and how many bytes the server holds for it.
//!
//! A client that stops sending in the
//! middle of a message holds a stream (over HTTP/1.1, a whole connection)
//! and the memory of what it sent so far, for ever. nginx closes such a
//! client after 60 s (`client_body_timeout`); here the call ends after
//! `--body-read-timeout` without a byte, with `DEADLINE_EXCEEDED`: the
//! server gave the request that long to arrive, as a deadline would.
//!
//! Every incomplete message of [`RESERVE_FROM`] bytes or more also takes its
//! announced length from a server-wide budget (`--max-pending-message-bytes`)
//! until it is complete: the gRPC decoder buffers a message whole before the
//! handler sees it, so a few thousand calls each sending a 4 MiB message in
//! pieces would otherwise hold gigabytes. Past the budget the call ends with
//! `RESOURCE_EXHAUSTED`. Smaller messages are bounded by the calls in flight.
//!
//! The clock runs only while a message is incomplete: a stream that pauses
//! between whole messages is waiting for its client's next move, which the
//! admission budget and keepalive govern, not this timeout. A unary Connect
//! body is one message from its first byte to its end: once it has brought
//! [`RESERVE_FROM`] bytes, all it has brought is held in the budget, growing
//! with each piece, until the translation has read it whole.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tonic::Status;

use connect_proto::framing::FrameCounter;

/// The smallest message that takes from the budget: below it, the calls in
/// flight bound what is held (4096 calls x 64 KiB = 256 MiB at most).
pub(crate) const RESERVE_FROM: u32 = 64 * 1024;

/// The server-wide budget of bytes held for incomplete request messages.
#[derive(Debug)]
pub(crate) struct ReceiveBudget {
    limit: usize,
    held: AtomicUsize,
    refused: prometheus::IntCounter,
}

impl ReceiveBudget {
    /// A budget of `limit` bytes; refusals count into `refused`.
    pub(crate) fn new(limit: usize, refused: prometheus::IntCounter) -> Arc<Self> {
        Arc::new(Self { limit, held: AtomicUsize::new(0), refused })
    }

    /// `bytes` taken from the budget until the reservation is dropped, or `None` when they do not fit.
    fn reserve(self: &Arc<Self>, bytes: usize) -> Option<Reservation> {
        self.take(bytes).then(|| Reservation { budget: Arc::clone(self), bytes })
    }

    /// `bytes` more for `reservation` (made when `None`); `false` when they do not fit.
    fn grow(self: &Arc<Self>, reservation: &mut Option<Reservation>, bytes: usize) -> bool {
        if !self.take(bytes) {
            return false;
        }
        match reservation {
            Some(held) => held.bytes += bytes,
            None => *reservation = Some(Reservation { budget: Arc::clone(self), bytes }),
        }
        true
    }

    /// Takes `bytes` from the budget; `false` (counted as a refusal) when they do not fit.
    fn take(&self, bytes: usize) -> bool {
        let taken = self.held.fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
            held.checked_add(bytes).filter(|total| *total <= self.limit)
        });
        if taken.is_err() {
            self.refused.inc();
        }
        taken.is_ok()
    }

    /// The bytes held now (for tests).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }
}

/// One incomplete message's bytes, given back when it completes or its body is dropped.
#[derive(Debug)]
struct Reservation {
    budget: Arc<ReceiveBudget>,
    bytes: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// The status of a call whose message does not fit in the budget.
fn over_budget(len: u32) -> Status {
    Status::resource_exhausted(format!(
        "the server holds its budget of bytes for messages being received \
         (--max-pending-message-bytes) and cannot take this one of {len} bytes; retry later"
    ))
}

/// The status of a whole-body message (Connect unary) that outgrew the budget.
fn over_budget_so_far(received: usize) -> Status {
    Status::resource_exhausted(format!(
        "the server holds its budget of bytes for messages being received \
         (--max-pending-message-bytes) and cannot take more of this one ({received} bytes so far); retry later"
    ))
}

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
        // Where incomplete messages take their bytes from; `None`: unbounded (the web path's
        // translations, whose own reads are bounded by the message limit).
        budget: Option<Arc<ReceiveBudget>>,
        // What the message being received holds of it.
        reservation: Option<Reservation>,
        // The bytes of a whole-body message received so far, and the length it declared.
        received: usize,
        declared: Option<usize>,
        // A message that did not fit, refused at the next poll: the frame that announced
        // it goes to the decoder first, so what precedes it in the frame is judged first.
        over_budget: Option<u32>,
        // Made on the first wait and reset after: the usual request is at hand and never waits.
        sleep: Option<Pin<Box<Sleep>>>,
        // Whether `sleep` is armed for the current wait.
        waiting: bool,
    }
}

impl<B> BodyTimeout<B> {
    pub(crate) fn new(inner: B, timeout: Duration, watch: Watch) -> Self {
        Self {
            inner,
            timeout,
            watch,
            frames: FrameCounter::default(),
            budget: None,
            reservation: None,
            received: 0,
            declared: None,
            over_budget: None,
            sleep: None,
            waiting: false,
        }
    }

    /// The same, with its incomplete messages taking their bytes from `budget`.
    fn within(mut self, budget: Arc<ReceiveBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The same for a whole-body message ([`Watch::Whole`]): the length its
    /// body declares (`Content-Length`), when it does, is taken with its first bytes.
    pub(crate) fn whole_within(mut self, budget: Arc<ReceiveBudget>) -> Self
    where
        B: Body,
    {
        self.declared = self.inner.size_hint().exact().and_then(|len| usize::try_from(len).ok());
        self.within(budget)
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
        if let Some(len) = this.over_budget.take() {
            return Poll::Ready(Some(Err(Box::new(over_budget(len)))));
        }
        match this.inner.poll_frame(cx) {
            Poll::Ready(frame) => {
                *this.waiting = false;
                if let Some(Ok(frame)) = &frame
                    && let Some(data) = frame.data_ref()
                {
                    match (this.watch, this.budget.as_ref()) {
                        (Watch::Whole, None) => {}
                        (Watch::Whole, Some(budget)) => {
                            *this.received += data.len();
                            // A declared length is taken whole with the first bytes (so a body
                            // that cannot fit is refused before it is sent); otherwise what has
                            // come so far.
                            let wanted =
                                this.declared.map_or(*this.received, |declared| declared.max(*this.received));
                            let held = this.reservation.as_ref().map_or(0, |reservation| reservation.bytes);
                            if wanted >= RESERVE_FROM as usize
                                && wanted > held
                                && !budget.grow(this.reservation, wanted - held)
                            {
                                let refused = match this.declared {
                                    Some(declared) => {
                                        over_budget(u32::try_from(*declared).unwrap_or(u32::MAX))
                                    }
                                    None => over_budget_so_far(*this.received),
                                };
                                return Poll::Ready(Some(Err(Box::new(refused))));
                            }
                        }
                        (Watch::Messages, budget) => {
                            if this.frames.feed(data) > 0 {
                                // The message the reservation was for has ended.
                                *this.reservation = None;
                            }
                            match (this.frames.message_len(), budget) {
                                (None, _) => *this.reservation = None,
                                (Some(len), Some(budget))
                                    if len >= RESERVE_FROM && this.reservation.is_none() =>
                                {
                                    match budget.reserve(len as usize) {
                                        Some(reservation) => *this.reservation = Some(reservation),
                                        None => *this.over_budget = Some(len),
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
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

/// A connection's service whose request bodies get [`BodyTimeout`] on their
/// messages, within the server's [`ReceiveBudget`].
#[derive(Debug, Clone)]
pub(crate) struct BodyTimeouts<S> {
    inner: S,
    timeout: Duration,
    budget: Arc<ReceiveBudget>,
}

impl<S> BodyTimeouts<S> {
    pub(crate) fn new(inner: S, timeout: Duration, budget: Arc<ReceiveBudget>) -> Self {
        Self { inner, timeout, budget }
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
        let (timeout, budget) = (self.timeout, Arc::clone(&self.budget));
        self.inner.call(request.map(|body| BodyTimeout::new(body, timeout, Watch::Messages).within(budget)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_what_does_not_fit_and_takes_back_what_ends() {
        let budget = ReceiveBudget::new(100, prometheus::IntCounter::new("refused", "refused").unwrap());
        let first = budget.reserve(60).expect("fits");
        assert!(budget.reserve(50).is_none());
        assert_eq!(budget.refused.get(), 1);
        let second = budget.reserve(40).expect("fits exactly");
        assert_eq!(budget.held(), 100);
        drop((first, second));
        assert_eq!(budget.held(), 0);
    }

    /// Polls `body` to its end; the status it fails with, if any.
    async fn drain<B>(mut body: BodyTimeout<B>) -> Option<(tonic::Code, String)>
    where
        B: Body<Data = Bytes> + Unpin,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        use http_body_util::BodyExt as _;
        while let Some(frame) = body.frame().await {
            if let Err(error) = frame {
                let status = error.downcast::<Status>().expect("a status");
                return Some((status.code(), status.message().to_owned()));
            }
        }
        None
    }

    #[tokio::test]
    async fn a_whole_body_without_a_length_holds_what_it_brought_and_gives_it_back() {
        let budget = ReceiveBudget::new(100_000, prometheus::IntCounter::new("refused", "refused").unwrap());
        let chunks = |n: usize| {
            let frames =
                (0..n).map(|_| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(vec![0; 30_000]))));
            http_body_util::StreamBody::new(futures::stream::iter(frames))
        };
        // 90,000 bytes in three pieces: held from the third (past 64 KiB), given back at the end.
        let mut fits = BodyTimeout::new(chunks(3), Duration::from_secs(1), Watch::Whole)
            .whole_within(Arc::clone(&budget));
        use http_body_util::BodyExt as _;
        for _ in 0..2 {
            fits.frame().await.expect("a frame").expect("data");
        }
        assert_eq!(budget.held(), 0, "below 64 KiB nothing is held");
        fits.frame().await.expect("a frame").expect("data");
        assert_eq!(budget.held(), 90_000);
        assert_eq!(drain(fits).await, None);
        assert_eq!(budget.held(), 0);
        // 120,000: the fourth piece does not fit.
        let refused = BodyTimeout::new(chunks(4), Duration::from_secs(1), Watch::Whole)
            .whole_within(Arc::clone(&budget));
        let expected = "the server holds its budget of bytes for messages being received \
                        (--max-pending-message-bytes) and cannot take more of this one (120000 bytes so far); retry later";
        assert_eq!(drain(refused).await, Some((tonic::Code::ResourceExhausted, expected.to_owned())));
        assert_eq!((budget.held(), budget.refused.get()), (0, 1));
    }
}
