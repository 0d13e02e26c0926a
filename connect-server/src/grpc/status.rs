//! The final status of a call as it travels: in the trailers, or in the
//! headers of a trailers-only response.

use connect_proto::headers::{GRPC_STATUS, X_MESSAGE_COUNT};
use http::{HeaderMap, HeaderValue};
use tonic::{Code, Status, metadata::MetadataMap};

/// The `grpc-status` of a header or trailer block; `None` when it has none.
/// A malformed value counts as `Unknown`, as the spec says.
pub(crate) fn code_in(headers: &HeaderMap) -> Option<Code> {
    headers.get(GRPC_STATUS).map(|value| Code::from_bytes(value.as_bytes()))
}

/// Copies `status` with an `x-message-count` trailer added.
pub(crate) fn with_message_count(status: Status, sent: u64) -> Status {
    let mut trailers = HeaderMap::with_capacity(1);
    trailers.insert(X_MESSAGE_COUNT, HeaderValue::from(sent));
    Status::with_metadata(status.code(), status.message(), MetadataMap::from_headers(trailers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_status_code_of_a_block() {
        let mut headers = HeaderMap::new();
        assert_eq!(code_in(&headers), None);
        for (value, code) in
            [("0", Code::Ok), ("4", Code::DeadlineExceeded), ("99", Code::Unknown), ("x", Code::Unknown)]
        {
            headers.insert(GRPC_STATUS, value.parse().unwrap());
            assert_eq!(code_in(&headers), Some(code), "{value}");
        }
    }
}
