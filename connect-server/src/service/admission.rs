//! Admission control: whether the server takes a new call at all, decided
//! before anything else is spent on it.
//!
//! A server-wide budget of calls in flight (`--max-calls-in-flight`), and a
//! fair share of it per connection once half of it is taken: then a
//! connection holding `budget / active connections` calls or more gets no
//! new one, so a client that opens many streams cannot starve one that opens
//! few. A refused call ends at once with `RESOURCE_EXHAUSTED` and a
//! `grpc-retry-pushback-ms` header (gRFC A6), which the web protocols carry
//! over as their own error; it is counted by reason and logged at most once a
//! second, never per call (an access-log line per refusal would turn an
//! overload into a logging one).
//!
//! Why not `tower::limit::ConcurrencyLimit` and `tower::load_shed`: they
//! bound one service instance (here: one connection), hold the permit only
//! until the response headers (a stream would be counted as done when it
//! starts) and know nothing of connections; the budget here is server-wide
//! and a call's permit lives in its response body, until the stream ends.
//! The cost on the admitted path is four atomic adds.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll, ready},
    time::Instant,
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use prometheus::IntCounter;
use tonic::Status;
use tower::Service;

use connect_proto::headers::GRPC_RETRY_PUSHBACK_MS;

/// How long a refused client is asked to wait before it retries: long enough
/// for calls to end, short enough that a brief burst costs little latency.
const PUSHBACK_MS: u64 = 250;

/// The one method admitted whatever the load.
const HEALTH_CHECK: &str = "/grpc.health.v1.Health/Check";

/// Why a call was refused; each reason has its own series of
/// `connect_calls_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The server-wide budget is taken.
    Overload,
    /// The server is past half its budget and this connection holds its share.
    ConnectionShare,
}

/// The server-wide budget of calls in flight, shared by every worker.
#[derive(Debug)]
pub(crate) struct Admission {
    limit: usize,
    in_flight: AtomicUsize,
    /// Connections holding at least one admitted call.
    active_connections: AtomicUsize,
    refused_overload: IntCounter,
    refused_share: IntCounter,
    /// The refusal log: at most one line a second, with what it summarizes.
    log: RefusalLog,
    /// The headers of each refusal's answer, made once: a refusal then costs
    /// a clone of them instead of formatting and percent-encoding its message
    /// (about 2,000 instructions of a refusal's 33,000, by `bench/instructions`).
    overload_headers: HeaderMap,
    share_headers: HeaderMap,
}

impl Admission {
    /// A budget of `limit` calls in flight, counting refusals into the two counters.
    pub(crate) fn new(limit: usize, refused_overload: IntCounter, refused_share: IntCounter) -> Arc<Self> {
        Arc::new(Self {
            limit,
            in_flight: AtomicUsize::new(0),
            active_connections: AtomicUsize::new(0),
            refused_overload,
            refused_share,
            log: RefusalLog::new(),
            overload_headers: refusal_headers(format!(
                "the server is overloaded: {limit} calls in flight; retry later"
            )),
            share_headers: refusal_headers(
                "this connection holds its share of the server's calls in flight; retry later".to_owned(),
            ),
        })
    }

    /// Calls admitted and not yet ended, across every connection.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// `inner`, the service of one connection, behind this budget.
    pub(crate) fn guard<S>(self: &Arc<Self>, inner: S) -> Admit<S> {
        Admit { inner, admission: Arc::clone(self), connection: Arc::new(AtomicUsize::new(0)) }
    }

    /// A permit for one more call on `connection`, or why not.
    fn admit(self: &Arc<Self>, connection: &Arc<AtomicUsize>) -> Result<Permit, Refusal> {
        let total = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let refusal = if total >= self.limit {
            Some(Refusal::Overload)
        } else if total >= self.limit / 2 {
            let share = (self.limit / self.active_connections.load(Ordering::Acquire).max(1)).max(1);
            (connection.load(Ordering::Acquire) >= share).then_some(Refusal::ConnectionShare)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            self.refused(refusal);
            return Err(refusal);
        }
        if connection.fetch_add(1, Ordering::AcqRel) == 0 {
            self.active_connections.fetch_add(1, Ordering::AcqRel);
        }
        Ok(Permit { admission: Arc::clone(self), connection: Arc::clone(connection) })
    }

    fn refused(&self, refusal: Refusal) {
        match refusal {
            Refusal::Overload => self.refused_overload.inc(),
            Refusal::ConnectionShare => self.refused_share.inc(),
        }
        if let Some(count) = self.log.refused() {
            tracing::warn!(
                refused = count,
                in_flight = self.in_flight(),
                limit = self.limit,
                "refusing calls: the server is at its budget of calls in flight (--max-calls-in-flight)"
            );
        }
    }

    /// The answer to a refused call: trailers-only, `RESOURCE_EXHAUSTED`.
    fn refusal<B: Default>(&self, refusal: Refusal) -> Response<B> {
        let mut response = Response::new(B::default());
        *response.headers_mut() = match refusal {
            Refusal::Overload => self.overload_headers.clone(),
            Refusal::ConnectionShare => self.share_headers.clone(),
        };
        response
    }
}

/// The headers of a trailers-only `RESOURCE_EXHAUSTED` answer with `message`
/// and a pushback of [`PUSHBACK_MS`].
fn refusal_headers(message: String) -> HeaderMap {
    let mut headers = Status::resource_exhausted(message).into_http::<()>().into_parts().0.headers;
    headers.insert(GRPC_RETRY_PUSHBACK_MS, HeaderValue::from(PUSHBACK_MS));
    headers
}

/// One admitted call's place in the budget, given back when it is dropped
/// (with the response body: when the stream has ended or was reset).
#[derive(Debug)]
struct Permit {
    admission: Arc<Admission>,
    connection: Arc<AtomicUsize>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.connection.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.admission.active_connections.fetch_sub(1, Ordering::AcqRel);
        }
        self.admission.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// At most one log line a second about refusals, counting those in between.
#[derive(Debug)]
struct RefusalLog {
    start: Instant,
    /// The second (since `start`) of the last line, plus one; 0: none yet.
    logged_second: AtomicU64,
    since_logged: AtomicU64,
}

impl RefusalLog {
    fn new() -> Self {
        Self { start: Instant::now(), logged_second: AtomicU64::new(0), since_logged: AtomicU64::new(0) }
    }

    /// Notes one refusal; `Some(count)` when a line is due now, with the refusals it covers.
    fn refused(&self) -> Option<u64> {
        self.since_logged.fetch_add(1, Ordering::AcqRel);
        let second = self.start.elapsed().as_secs() + 1;
        let last = self.logged_second.load(Ordering::Acquire);
        if second <= last {
            return None;
        }
        // One thread wins the second; the others' refusals go into the next line.
        self.logged_second.compare_exchange(last, second, Ordering::AcqRel, Ordering::Acquire).ok()?;
        Some(self.since_logged.swap(0, Ordering::AcqRel))
    }
}

/// One connection's service behind the budget (its clones count as the same connection).
#[derive(Debug, Clone)]
pub(crate) struct Admit<S> {
    inner: S,
    admission: Arc<Admission>,
    /// The calls of this connection in flight.
    connection: Arc<AtomicUsize>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Admit<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<AdmittedBody<ResBody>>;
    type Error = S::Error;
    type Future = AdmitFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // A health check is never refused: an orchestrator would restart a
        // server that is only busy. It is one small unary call.
        if request.uri().path() == HEALTH_CHECK {
            return AdmitFuture::Admitted { future: self.inner.call(request), permit: Some(None) };
        }
        match self.admission.admit(&self.connection) {
            Ok(permit) => {
                AdmitFuture::Admitted { future: self.inner.call(request), permit: Some(Some(permit)) }
            }
            Err(refusal) => AdmitFuture::Refused { admission: Arc::clone(&self.admission), refusal },
        }
    }
}

pin_project! {
    /// The inner service's response with the call's permit, or the refusal.
    #[project = AdmitFutureProj]
    pub(crate) enum AdmitFuture<F> {
        Admitted { #[pin] future: F, permit: Option<Option<Permit>> },
        Refused { admission: Arc<Admission>, refusal: Refusal },
    }
}

impl<F, B, E> Future for AdmitFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<AdmittedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AdmitFutureProj::Admitted { future, permit } => {
                let response = ready!(future.poll(cx))?;
                let permit = permit.take().expect("polled after completion");
                Poll::Ready(Ok(response.map(|inner| AdmittedBody::Admitted { inner, _permit: permit })))
            }
            AdmitFutureProj::Refused { admission, refusal } => Poll::Ready(Ok(admission.refusal(*refusal))),
        }
    }
}

pin_project! {
    /// An admitted call's response body, which holds its permit; or the empty
    /// body of a refusal.
    #[project = AdmittedBodyProj]
    #[derive(Default)]
    pub(crate) enum AdmittedBody<B> {
        Admitted { #[pin] inner: B, _permit: Option<Permit> },
        #[default]
        Refused,
    }
}

impl<B: Body<Data = Bytes>> Body for AdmittedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.project() {
            AdmittedBodyProj::Admitted { inner, .. } => inner.poll_frame(cx),
            AdmittedBodyProj::Refused => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Admitted { inner, .. } => inner.is_end_stream(),
            Self::Refused => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Admitted { inner, .. } => inner.size_hint(),
            Self::Refused => SizeHint::with_exact(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(limit: usize) -> Arc<Admission> {
        let counter = || IntCounter::new("refused", "refused").expect("valid counter");
        Admission::new(limit, counter(), counter())
    }

    #[test]
    fn the_budget_is_server_wide_and_given_back() {
        let admission = admission(4);
        let connections: Vec<_> = (0..4).map(|_| Arc::new(AtomicUsize::new(0))).collect();
        let permits: Vec<_> =
            connections.iter().map(|c| admission.admit(c).expect("within the budget")).collect();
        assert_eq!(admission.in_flight(), 4);
        assert_eq!(admission.admit(&connections[0]).err(), Some(Refusal::Overload));
        assert_eq!(admission.refused_overload.get(), 1);
        drop(permits);
        assert_eq!(admission.in_flight(), 0);
        assert_eq!(admission.active_connections.load(Ordering::Acquire), 0);
        assert!(admission.admit(&connections[0]).is_ok());
    }

    #[test]
    fn past_half_the_budget_a_connection_gets_its_share_and_no_more() {
        let admission = admission(8);
        let greedy = Arc::new(AtomicUsize::new(0));
        // Alone, a connection may take up to half the budget, then its share (8 / 1) still.
        let mut held: Vec<_> = (0..6).map(|_| admission.admit(&greedy).expect("its share")).collect();
        let polite = Arc::new(AtomicUsize::new(0));
        held.push(admission.admit(&polite).expect("a second connection's first call"));
        // Two active connections: a share is 4, which the greedy one holds already.
        assert_eq!(admission.admit(&greedy).err(), Some(Refusal::ConnectionShare));
        assert_eq!(admission.refused_share.get(), 1);
        held.push(admission.admit(&polite).expect("the polite one is under its share"));
        assert_eq!(admission.admit(&polite).err(), Some(Refusal::Overload));
    }

    #[test]
    fn refusals_are_logged_at_most_once_a_second() {
        let log = RefusalLog::new();
        assert_eq!(log.refused(), Some(1));
        assert_eq!(log.refused(), None);
        assert_eq!(log.refused(), None);
        assert_eq!(log.since_logged.load(Ordering::Acquire), 2);
    }

    #[test]
    fn a_refusal_is_resource_exhausted_with_a_pushback() {
        let admission = admission(1);
        for (refusal, message) in [
            (Refusal::Overload, "the%20server%20is%20overloaded:%201%20calls%20in%20flight;%20retry%20later"),
            (
                Refusal::ConnectionShare,
                "this%20connection%20holds%20its%20share%20of%20the%20server's%20calls%20in%20flight;%20retry%20later",
            ),
        ] {
            let response: Response<AdmittedBody<http_body_util::Empty<Bytes>>> = admission.refusal(refusal);
            let headers = response.headers();
            assert_eq!(headers["content-type"], "application/grpc");
            assert_eq!(headers["grpc-status"], "8");
            assert_eq!(headers["grpc-message"], message);
            assert_eq!(headers["grpc-retry-pushback-ms"], "250");
            assert_eq!(headers.len(), 4);
        }
    }
}
