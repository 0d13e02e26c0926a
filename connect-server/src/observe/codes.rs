//! Names of gRPC status codes: the label values of go-grpc-prometheus and the
//! canonical upper-case names used in log lines.

use tonic::Code;

/// `grpc_code` label values, as go-grpc-prometheus writes them (Go's `codes.Code.String()`).
const PROMETHEUS: [&str; 17] = [
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

/// Canonical names, as in the gRPC spec and the client's `RPC failed:` line.
const CANONICAL: [&str; 17] = [
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

/// How many gRPC codes there are (numbered 0..COUNT), so metrics can be pre-created for each.
pub(crate) const COUNT: usize = PROMETHEUS.len();

/// The array index of `code` (its numeric value, 0..=16).
pub(crate) fn index(code: Code) -> usize {
    // `Code` is a fieldless enum numbered 0..=16; tonic maps anything else to `Unknown`.
    (code as i32).clamp(0, COUNT as i32 - 1) as usize
}

/// The go-grpc-prometheus label value of the code with numeric value `index`.
pub(crate) fn prometheus_label(index: usize) -> &'static str {
    PROMETHEUS[index]
}

/// The canonical upper-case name of `code`, e.g. `DEADLINE_EXCEEDED`.
pub fn canonical_name(code: Code) -> &'static str {
    CANONICAL[index(code)]
}

/// Parses a `grpc-status` header value; anything malformed counts as `Unknown`, as the spec says.
pub(crate) fn parse_status(value: &[u8]) -> Code {
    let parsed = std::str::from_utf8(value).ok().and_then(|text| text.parse::<i32>().ok());
    parsed.map_or(Code::Unknown, Code::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_numeric_order() {
        assert_eq!(prometheus_label(index(Code::Cancelled)), "Canceled");
        assert_eq!(prometheus_label(index(Code::Unauthenticated)), "Unauthenticated");
        assert_eq!(canonical_name(Code::DeadlineExceeded), "DEADLINE_EXCEEDED");
        assert_eq!(canonical_name(Code::Ok), "OK");
    }

    #[test]
    fn parses_status_headers() {
        assert_eq!(parse_status(b"0"), Code::Ok);
        assert_eq!(parse_status(b"4"), Code::DeadlineExceeded);
        assert_eq!(parse_status(b"99"), Code::Unknown);
        assert_eq!(parse_status(b"x"), Code::Unknown);
    }
}
