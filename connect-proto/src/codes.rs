//! The names of gRPC status codes, written once for the server's logs and
//! metrics and the client's `RPC failed:` line.

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
        }
    }
}
