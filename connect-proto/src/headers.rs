//! The headers gRPC, Connect and this project put on the wire: their names,
//! the values every gRPC request carries, and the one list of headers a
//! caller may not set as metadata (and a translation does not pass on as
//! metadata), written once for the server, the playground and the client.

use http::{HeaderMap, HeaderName, HeaderValue, header};

/// The call's deadline (see [`crate::timeout`]).
pub const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");
/// The call's status code, in the trailers or a trailers-only response.
pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
/// The status message, percent-encoded.
pub const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
/// The status details: a `google.rpc.Status`, base64.
pub const GRPC_STATUS_DETAILS_BIN: HeaderName = HeaderName::from_static("grpc-status-details-bin");
/// How long a client should wait before retrying a refused call, in
/// milliseconds (gRFC A6): the server's answer to overload.
pub const GRPC_RETRY_PUSHBACK_MS: HeaderName = HeaderName::from_static("grpc-retry-pushback-ms");
/// The compression of the sender's messages.
pub const GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");
/// The compressions the sender accepts.
pub const GRPC_ACCEPT_ENCODING: HeaderName = HeaderName::from_static("grpc-accept-encoding");

/// Connect's deadline, in milliseconds.
pub const CONNECT_TIMEOUT_MS: HeaderName = HeaderName::from_static("connect-timeout-ms");
/// Connect's protocol version (`1`).
pub const CONNECT_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("connect-protocol-version");
/// The compression of a Connect stream's messages.
pub const CONNECT_CONTENT_ENCODING: HeaderName = HeaderName::from_static("connect-content-encoding");
/// The compressions a Connect stream's client accepts.
pub const CONNECT_ACCEPT_ENCODING: HeaderName = HeaderName::from_static("connect-accept-encoding");

/// The request id: echoed when the client sends one, generated otherwise.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The server that answered.
pub const X_SERVED_BY: HeaderName = HeaderName::from_static("x-served-by");
/// The trailer counting the messages the server sent.
pub const X_MESSAGE_COUNT: HeaderName = HeaderName::from_static("x-message-count");

/// The `content-type` of a gRPC request (and response) with protobuf messages.
pub const APPLICATION_GRPC: HeaderValue = HeaderValue::from_static("application/grpc");
/// The `te` value gRPC requires of requests: the client reads trailers.
pub const TRAILERS: HeaderValue = HeaderValue::from_static("trailers");

/// Sets the headers every gRPC request carries: `content-type: application/grpc`
/// and `te: trailers`, replacing any already there.
pub fn insert_grpc_request_headers(headers: &mut HeaderMap) {
    headers.insert(header::CONTENT_TYPE, APPLICATION_GRPC);
    headers.insert(header::TE, TRAILERS);
}

/// Headers HTTP sets for a request or a body, which are never metadata:
/// the body's framing and encoding, the HTTP/1.1 hop, and the agent.
const HTTP_OWN: [HeaderName; 12] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::ACCEPT_ENCODING,
    header::TE,
    header::TRAILER,
    header::HOST,
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::USER_AGENT,
];

/// Whether `name` is reserved: set by gRPC (`grpc-*`), Connect (`connect-*`)
/// or HTTP, so a caller may not send it as metadata and a translation from
/// one protocol to another does not carry it over as metadata.
pub fn is_reserved(name: &HeaderName) -> bool {
    let name = name.as_str();
    name.starts_with("grpc-") || name.starts_with("connect-") || HTTP_OWN.iter().any(|own| own == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_wire_names() {
        assert_eq!(GRPC_TIMEOUT, "grpc-timeout");
        assert_eq!(GRPC_STATUS, "grpc-status");
        assert_eq!(GRPC_MESSAGE, "grpc-message");
        assert_eq!(GRPC_STATUS_DETAILS_BIN, "grpc-status-details-bin");
        assert_eq!(GRPC_ENCODING, "grpc-encoding");
        assert_eq!(GRPC_ACCEPT_ENCODING, "grpc-accept-encoding");
        assert_eq!(CONNECT_TIMEOUT_MS, "connect-timeout-ms");
        assert_eq!(CONNECT_PROTOCOL_VERSION, "connect-protocol-version");
        assert_eq!(CONNECT_CONTENT_ENCODING, "connect-content-encoding");
        assert_eq!(CONNECT_ACCEPT_ENCODING, "connect-accept-encoding");
        assert_eq!(X_REQUEST_ID, "x-request-id");
        assert_eq!(X_SERVED_BY, "x-served-by");
        assert_eq!(X_MESSAGE_COUNT, "x-message-count");
        assert_eq!(APPLICATION_GRPC, "application/grpc");
        assert_eq!(TRAILERS, "trailers");
    }

    #[test]
    fn grpc_request_headers_replace_what_was_there() {
        let mut headers = HeaderMap::new();
        headers.append(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.append(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        headers.insert(X_REQUEST_ID, HeaderValue::from_static("abc"));
        insert_grpc_request_headers(&mut headers);
        let content_types: Vec<_> = headers.get_all(header::CONTENT_TYPE).iter().collect();
        assert_eq!(content_types, ["application/grpc"]);
        assert_eq!(headers["te"], "trailers");
        assert_eq!(headers["x-request-id"], "abc");
        assert_eq!(headers.len(), 3);
    }

    #[test]
    fn reserves_protocol_and_http_headers() {
        for name in [
            "grpc-timeout",
            "grpc-status",
            "grpc-anything",
            "connect-timeout-ms",
            "connect-protocol-version",
            "connect-anything",
            "content-type",
            "content-length",
            "content-encoding",
            "accept-encoding",
            "te",
            "trailer",
            "host",
            "connection",
            "keep-alive",
            "transfer-encoding",
            "upgrade",
            "user-agent",
        ] {
            assert!(is_reserved(&HeaderName::from_static(name)), "{name}");
        }
    }

    #[test]
    fn leaves_metadata_alone() {
        for name in [
            "authorization",
            "x-request-id",
            "x-served-by",
            "x-message-count",
            "trace-bin",
            "grpc",
            "grpcx-a",
            "connect",
            "trailers",
            "te-x",
            "x-grpc-web",
            "accept",
        ] {
            assert!(!is_reserved(&HeaderName::from_static(name)), "{name}");
        }
    }
}
