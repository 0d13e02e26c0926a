//! The call's deadline, read from the `grpc-timeout` request header.
//!
//! A deadline must bound streamed bodies too, not only the handler's future,
//! so handlers read it themselves and stop their streams at it.

use std::{pin::Pin, time::Duration};

use connect_proto::{headers::GRPC_TIMEOUT, timeout};
use tokio::time::{Instant, Sleep};
use tonic::metadata::MetadataMap;

/// How much earlier than the client's deadline the server ends a call.
///
/// The client runs a timer on the same deadline (tonic's client calls its
/// expiry `CANCELLED`), and timers have millisecond resolution: ending 2 ms
/// early lets the server's `DEADLINE_EXCEEDED` reach the client first.
pub(crate) const DEADLINE_MARGIN: Duration = Duration::from_millis(2);

/// The call's deadline, computed once by the observe layer as the request
/// arrives and passed to the handler in the request's extensions.
///
/// hyper runs each call's handler as its own task, which may first run well
/// after the request arrived; a deadline computed by the handler itself would
/// then be later than the client's, and lose the race the margin is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CallDeadline(pub Instant);

/// The deadline of `request`: the one the observe layer computed, else read from its metadata.
pub(crate) fn of<T>(request: &tonic::Request<T>) -> Option<Instant> {
    match request.extensions().get::<CallDeadline>() {
        Some(CallDeadline(at)) => Some(*at),
        None => from_metadata(request.metadata()),
    }
}

/// The instant at which the call described by `metadata` must end, if the client set one.
pub(crate) fn from_metadata(metadata: &MetadataMap) -> Option<Instant> {
    from_header(metadata.get(GRPC_TIMEOUT.as_str())?.as_bytes())
}

/// The instant at which a call with `grpc-timeout: value` must end (see [`DEADLINE_MARGIN`]).
pub(crate) fn from_header(value: &[u8]) -> Option<Instant> {
    let timeout = timeout::parse(std::str::from_utf8(value).ok()?)?;
    Some(Instant::now() + timeout.saturating_sub(DEADLINE_MARGIN))
}

/// A timer for `deadline`, to wait on with [`expired`]; `None` when there is none.
pub(crate) fn timer(deadline: Option<Instant>) -> Option<Pin<Box<Sleep>>> {
    deadline.map(|at| Box::pin(tokio::time::sleep_until(at)))
}

/// Resolves when `timer` fires, or never when there is none.
pub(crate) async fn expired(timer: &mut Option<Pin<Box<Sleep>>>) {
    match timer {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}
