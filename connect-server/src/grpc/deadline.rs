//! The call's deadline, read from the `grpc-timeout` request header.
//!
//! A deadline must bound streamed bodies too, not only the handler's future,
//! so handlers read it themselves and stop their streams at it.

use std::{pin::Pin, time::Duration};

use tokio::time::{Instant, Sleep};
use tonic::metadata::MetadataMap;

/// Longest `grpc-timeout` value the spec allows: eight digits.
const MAX_TIMEOUT_DIGITS: usize = 8;

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
    from_header(metadata.get("grpc-timeout")?.as_bytes())
}

/// The instant at which a call with `grpc-timeout: value` must end (see [`DEADLINE_MARGIN`]).
pub(crate) fn from_header(value: &[u8]) -> Option<Instant> {
    let timeout = parse_grpc_timeout(std::str::from_utf8(value).ok()?)?;
    Some(Instant::now() + timeout.saturating_sub(DEADLINE_MARGIN))
}

/// Parses a `grpc-timeout` value such as `100m` (milliseconds) or `5S` (seconds):
/// one to eight ASCII digits and a unit. Anything else is `None` (no deadline).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    // Split as bytes: the value comes off the wire and may end in a multi-byte character.
    let (&unit, digits) = value.as_bytes().split_last()?;
    if digits.is_empty() || digits.len() > MAX_TIMEOUT_DIGITS || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // At most eight digits: even in hours, the product fits in a u64.
    let amount = digits.iter().fold(0u64, |amount, digit| amount * 10 + u64::from(digit - b'0'));
    Some(match unit {
        b'H' => Duration::from_secs(amount * 3600),
        b'M' => Duration::from_secs(amount * 60),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("100m"), Some(Duration::from_millis(100)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("9n"), Some(Duration::from_nanos(9)));
        assert_eq!(parse_grpc_timeout("99999999H"), Some(Duration::from_secs(99_999_999 * 3600)));
    }

    #[test]
    fn rejects_malformed_values() {
        assert_eq!(parse_grpc_timeout(""), None);
        assert_eq!(parse_grpc_timeout("m"), None);
        assert_eq!(parse_grpc_timeout("10x"), None);
        assert_eq!(parse_grpc_timeout("123456789m"), None);
        assert_eq!(parse_grpc_timeout("-1S"), None);
        assert_eq!(parse_grpc_timeout("+1S"), None);
        assert_eq!(parse_grpc_timeout("1 S"), None);
        // Ends inside a multi-byte character: no panic, no deadline.
        assert_eq!(parse_grpc_timeout("1é"), None);
        assert_eq!(parse_grpc_timeout("é"), None);
    }
}
