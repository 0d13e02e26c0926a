//! The names of gRPC status codes, written once for the server's logs and
//! metrics and the client's `RPC failed:` line, and the Connect protocol's
//! code names and HTTP statuses, for the server's translation and the client's.

use http::StatusCode;
use tonic::Code;

/// How many gRPC codes there are, numbered `0..COUNT`.
pub const COUNT: usize = 17;

/// Canonical names, as in the gRPC spec (`DEADLINE_EXCEEDED`), by numeric value.
const CANONICAL: [&str; COUNT] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// `grpc_code` label values, as go-grpc-prometheus writes them (Go's `codes.Code.String()`).
const PROMETHEUS: [&str; COUNT] = [
    "OK",
    "Canceled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

/// Connect's code names (connectrpc.com/docs/protocol, "Error Codes"), by numeric value.
const CONNECT: [&str; COUNT] = [
    "ok",
    "canceled",
    "unknown",
    "invalid_argument",
    "deadline_exceeded",
    "not_found",
    "already_exists",
    "permission_denied",
    "resource_exhausted",
    "failed_precondition",
    "aborted",
    "out_of_range",
    "unimplemented",
    "internal",
    "unavailable",
    "data_loss",
    "unauthenticated",
];

/// The HTTP status of a Connect unary error with each code, by numeric value.
const CONNECT_HTTP: [u16; COUNT] =
    [200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401];

/// The numeric value of `code`, `0..COUNT`, as an array index.
pub fn index(code: Code) -> usize {
    // `Code` is a fieldless enum numbered 0..=16; tonic maps anything else to `Unknown`.
    (code as i32).clamp(0, COUNT as i32 - 1) as usize
}

/// The canonical upper-case name of `code`, e.g. `DEADLINE_EXCEEDED`.
pub fn canonical_name(code: Code) -> &'static str {
    CANONICAL[index(code)]
}

/// The go-grpc-prometheus label value of `code`, e.g. `DeadlineExceeded`.
pub fn prometheus_label(code: Code) -> &'static str {
    PROMETHEUS[index(code)]
}

/// Connect's name of `code`, e.g. `deadline_exceeded`.
pub fn connect_name(code: Code) -> &'static str {
    CONNECT[index(code)]
}

/// The code Connect names `name`; `None` for a name not in the protocol.
pub fn from_connect_name(name: &str) -> Option<Code> {
    CONNECT.iter().position(|known| *known == name).map(|value| Code::from(value as i32))
}

/// The HTTP status a Connect unary error with `code` carries.
pub fn connect_http_status(code: Code) -> StatusCode {
    StatusCode::from_u16(CONNECT_HTTP[index(code)]).expect("the table holds valid statuses")
}

/// The code a client gives a response that is not HTTP 200 and names no code
/// of its own (a proxy's error page; a Connect error whose body is not
/// Connect's JSON): the gRPC spec's HTTP to gRPC mapping, which Connect
/// takes too (tonic applies it but does not export it).
pub fn from_http_status(status: StatusCode) -> Code {
    match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_numeric_order() {
        assert_eq!(canonical_name(Code::Ok), "OK");
        assert_eq!(canonical_name(Code::DeadlineExceeded), "DEADLINE_EXCEEDED");
        assert_eq!(canonical_name(Code::Unauthenticated), "UNAUTHENTICATED");
        assert_eq!(prometheus_label(Code::Cancelled), "Canceled");
        assert_eq!(prometheus_label(Code::Unauthenticated), "Unauthenticated");
        for value in 0..COUNT as i32 {
            assert_eq!(index(Code::from(value)), value as usize);
            let code = Code::from(value);
            assert_eq!(from_connect_name(connect_name(code)), Some(code));
        }
    }

    #[test]
    fn connect_follows_the_protocol_table() {
        let row = |code| (connect_name(code), connect_http_status(code).as_u16());
        assert_eq!(row(Code::Cancelled), ("canceled", 499));
        assert_eq!(row(Code::InvalidArgument), ("invalid_argument", 400));
        assert_eq!(row(Code::DeadlineExceeded), ("deadline_exceeded", 504));
        assert_eq!(row(Code::ResourceExhausted), ("resource_exhausted", 429));
        assert_eq!(row(Code::Unimplemented), ("unimplemented", 501));
        assert_eq!(row(Code::Unauthenticated), ("unauthenticated", 401));
        assert_eq!(from_connect_name("cancelled"), None);
        assert_eq!(from_http_status(StatusCode::BAD_GATEWAY), Code::Unavailable);
        assert_eq!(from_http_status(StatusCode::IM_A_TEAPOT), Code::Unknown);
    }
}
