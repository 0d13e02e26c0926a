//! How the client fails: one error type, one line of output, one exit code.

use std::process::ExitCode;

use connect_proto::codes::canonical_name;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// The message of a call the client ended itself because its deadline passed.
const CLIENT_DEADLINE: &str = "deadline exceeded (client side)";

/// Everything that can make a `connect-client` command fail.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The call reached the server and ended with a non-OK status.
    #[error("{}", rpc_failed(.0))]
    Rpc(Box<Status>),
    /// The server answered both reflection versions with UNIMPLEMENTED: it
    /// offers none, and the schema must come from files (exit 1, as a failed RPC).
    #[error(
        "the server does not offer reflection (grpc.reflection.v1 and v1alpha: UNIMPLEMENTED); \
         give its schema with --proto FILE or --protoset FILE"
    )]
    NoReflection,
    /// The server could not be reached.
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// The address tried.
        addr: String,
        /// Why it failed, in one line.
        reason: String,
    },
    /// A health check answered, but not `SERVING` (the status was printed).
    #[error("not serving: {0}")]
    NotServing(String),
    /// A benchmark ran, but this many of its calls failed.
    #[error("{0} calls failed")]
    CallsFailed(u64),
    /// Flags that cannot be used together, found after parsing (exit 2, as clap's own usage errors).
    #[error("error: {0}")]
    Usage(String),
    /// Anything else: bad arguments, unreadable input.
    #[error("{0}")]
    Other(String),
}

impl ClientError {
    /// The error for a call that ended with `status`, with the status code a
    /// gRPC client reports:
    ///
    /// - tonic enforces `grpc-timeout` itself and reports its own expiry as
    ///   CANCELLED "Timeout expired" (keeping no source to tell it by): that is
    ///   DEADLINE_EXCEEDED. A status made locally has no metadata; one from the
    ///   server always has some.
    /// - a status made from a broken connection (a TLS alert, a reset) is
    ///   UNAVAILABLE, whatever code the transport chose.
    pub fn from_call(status: Status) -> Self {
        let timed_out = status.code() == Code::Cancelled
            && status.message() == tonic::TimeoutExpired(()).to_string()
            && status.metadata().is_empty();
        if timed_out {
            return Self::Rpc(Box::new(client_deadline_exceeded()));
        }
        if is_transport_failure(&status) {
            return Self::Rpc(Box::new(Status::unavailable(status.message().to_owned())));
        }
        Self::Rpc(Box::new(status))
    }

    /// The process exit code: 1 for a failed RPC (reflection missing included),
    /// a health status other than `SERVING` or benchmark calls that failed,
    /// 2 for bad usage (as clap's, and bad `--proto`/`--protoset` files),
    /// 3 when the server is unreachable, 4 otherwise.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::Rpc(_) | Self::NoReflection | Self::NotServing(_) | Self::CallsFailed(_) => 1,
            Self::Usage(_) => 2,
            Self::Connect { .. } => 3,
            Self::Other(_) => 4,
        })
    }
}

/// The status of a call the client gave up on because its deadline passed
/// without an answer from the server.
pub(crate) fn client_deadline_exceeded() -> Status {
    Status::deadline_exceeded(CLIENT_DEADLINE)
}

/// Whether `status` was made locally from a broken connection rather than
/// read from the server: such a status carries the transport error as its
/// source, while one from the server's trailers has none.
pub(crate) fn is_transport_failure(status: &Status) -> bool {
    matches!(status.code(), Code::Unknown | Code::Internal | Code::Cancelled | Code::Unavailable)
        && std::error::Error::source(status).is_some()
}

/// `RPC failed: CODE: message`, then one `  field {field}: {description}` line
/// per `google.rpc.BadRequest` field violation in the status details.
fn rpc_failed(status: &Status) -> String {
    let mut text = format!("RPC failed: {}: {}", canonical_name(status.code()), status.message());
    if let Some(bad_request) = status.get_details_bad_request() {
        for violation in bad_request.field_violations {
            text.push_str(&format!("\n  field {}: {}", violation.field, violation.description));
        }
    }
    text
}

/// Renders an error chain on one line, `outer: inner: innermost`.
pub(crate) fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tonic_timeouts_become_deadline_exceeded_and_server_statuses_stay() {
        let ClientError::Rpc(status) = ClientError::from_call(Status::cancelled("Timeout expired")) else {
            panic!("an RPC error")
        };
        assert_eq!((status.code(), status.message()), (Code::DeadlineExceeded, CLIENT_DEADLINE));
        let ClientError::Rpc(status) = ClientError::from_call(Status::unavailable("gone")) else {
            panic!("an RPC error")
        };
        assert_eq!((status.code(), status.message()), (Code::Unavailable, "gone"));
    }

    #[test]
    fn usage_errors_exit_2() {
        let error = ClientError::Usage("no".into());
        assert_eq!(error.to_string(), "error: no");
        assert_eq!(error.exit_code(), ExitCode::from(2));
    }
}
