//! How the client fails: one error type, one line of output, one exit code.

use std::process::ExitCode;

use tonic::{Code, Status};
use tonic_types::StatusExt;

/// Everything that can make a `connect-client` command fail.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The call reached the server and ended with a non-OK status.
    #[error("{}", rpc_failed(.0))]
    Rpc(Box<Status>),
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
    /// Anything else: bad arguments, unreadable input.
    #[error("{0}")]
    Other(String),
}

impl From<Status> for ClientError {
    fn from(status: Status) -> Self {
        // tonic's client enforces `grpc-timeout` on the response headers itself and
        // calls its own expiry CANCELLED "Timeout expired" (keeping no source to tell
        // by); gRPC clients call that DEADLINE_EXCEEDED. A status made locally has no
        // metadata, one from the server always has some.
        let timed_out = status.code() == Code::Cancelled
            && status.message() == tonic::TimeoutExpired(()).to_string()
            && status.metadata().is_empty();
        if timed_out {
            return Self::Rpc(Box::new(Status::deadline_exceeded("deadline exceeded (client side)")));
        }
        if is_transport_failure(&status) {
            // The connection failed under the call (e.g. a TLS alert, a reset):
            // gRPC calls that UNAVAILABLE whatever code the transport chose.
            return Self::Rpc(Box::new(Status::unavailable(status.message().to_owned())));
        }
        Self::Rpc(Box::new(status))
    }
}

impl ClientError {
    /// The process exit code: 1 for a failed RPC or a health status other than `SERVING`, 3 when the server is unreachable, 4 otherwise.
    /// (2 is clap's usage error.)
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::Rpc(_) | Self::NotServing(_) => 1,
            Self::Connect { .. } => 3,
            Self::Other(_) => 4,
        })
    }
}

/// Whether `status` was made locally from a broken connection rather than
/// read from the server: such a status carries the transport error as its
/// source, while one from the server's trailers has none.
pub fn is_transport_failure(status: &Status) -> bool {
    matches!(status.code(), Code::Unknown | Code::Internal | Code::Cancelled | Code::Unavailable)
        && std::error::Error::source(status).is_some()
}

/// `RPC failed: CODE: message`, then one `  field {field}: {description}` line
/// per `google.rpc.BadRequest` field violation in the status details.
fn rpc_failed(status: &Status) -> String {
    let mut text = format!("RPC failed: {}: {}", code_name(status.code()), status.message());
    if let Some(bad_request) = status.get_details_bad_request() {
        for violation in bad_request.field_violations {
            text.push_str(&format!("\n  field {}: {}", violation.field, violation.description));
        }
    }
    text
}

/// The canonical upper-case name of a gRPC status code, e.g. `INVALID_ARGUMENT`.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Renders an error chain on one line, `outer: inner: innermost`.
pub fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
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
