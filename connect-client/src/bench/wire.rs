//! A minimal gRPC caller written straight on `h2`, for the load generator;
//! it also speaks gRPC-Web and the Connect protocol (binary, over HTTP/2).
//!
//! Why not the tonic client: its `Channel` hands every call to a buffer task
//! and then to hyper's dispatch task before `h2` sees it; those hops cost the
//! load generator more CPU per call than the server spends answering it, so
//! the benchmark would measure the client. Here a call is one `h2` stream:
//! headers and the pre-encoded request frames out, response frames decoded
//! with prost, `grpc-status` read from the trailers (or from the headers of a
//! trailers-only response). gRPC-Web carries the trailers as a last framed
//! message (flag 0x80), Connect as an end-of-stream message (flag 0x02) and a
//! unary call's message bare, with its error as JSON and an HTTP status.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use connect_proto::{
    ResponseMessage, codes, framing,
    headers::{
        CONNECT_PROTOCOL_VERSION, CONNECT_TIMEOUT_MS, GRPC_MESSAGE, GRPC_STATUS, GRPC_TIMEOUT,
        insert_grpc_request_headers,
    },
    timeout,
};
use h2::RecvStream;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, header::CONTENT_TYPE};
use prost::Message as _;
use tonic::{Code, Status};

use super::{connection::Connection, payload::Payload};
use crate::{
    call::metadata::{Header, add_headers},
    channel::{
        Protocol,
        connect::{end_of_stream, timeout_ms, unary_error},
        invalid,
    },
    error::{ClientError, one_line},
};

/// The flag of gRPC-Web's trailers message.
const GRPC_WEB_TRAILERS: u8 = 0x80;

/// Most bytes of a Connect unary response (tonic's default message limit).
const MAX_UNARY_BODY: usize = 4 * 1024 * 1024;

/// How a call's answer is read: the protocol, and for Connect the call's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// gRPC: framed messages, then trailers.
    Grpc,
    /// gRPC-Web: framed messages, the last one the trailers.
    GrpcWeb,
    /// Connect unary: the bare message, or a JSON error with an HTTP status.
    ConnectUnary,
    /// A Connect stream: enveloped messages, the last one the end of the stream.
    ConnectStream,
}

/// What every call of a run sends: the method's URI, the headers and the request frames.
#[derive(Debug, Clone)]
pub(super) struct CallTemplate {
    uri: Uri,
    headers: HeaderMap,
    frames: Vec<Bytes>,
    answer: Answer,
    /// Whether responses are decoded as `ResponseMessage` (ConnectService), or only counted.
    decode: bool,
}

/// A call's deadline as its protocol sends it: what is left of it when the
/// call is sent, as a gRPC client does, so that a call sent late tells the
/// server how long its client will still wait.
fn timeout_header(answer: Answer, left: Duration) -> (HeaderName, HeaderValue) {
    match answer {
        Answer::ConnectUnary | Answer::ConnectStream => (CONNECT_TIMEOUT_MS, timeout_ms(left)),
        Answer::Grpc | Answer::GrpcWeb => (GRPC_TIMEOUT, timeout::encode(left)),
    }
}

impl CallTemplate {
    /// A template for calling the method of `payload` at `addr` in `protocol`
    /// with its messages, with the `-H` headers and an optional bearer token.
    /// Everything but the deadline is encoded here once, so a call only
    /// clones it.
    pub(super) fn new(
        addr: &str,
        payload: &Payload,
        protocol: Protocol,
        extra: &[Header],
        authorization: Option<&HeaderValue>,
    ) -> Result<Self, ClientError> {
        let uri = format!("{}{}", addr.trim_end_matches('/'), payload.path)
            .parse()
            .map_err(|error: http::uri::InvalidUri| invalid(addr, &error.to_string()))?;
        let answer = match protocol {
            Protocol::Grpc => Answer::Grpc,
            Protocol::GrpcWeb => Answer::GrpcWeb,
            Protocol::Connect if !payload.kind.is_stream() => Answer::ConnectUnary,
            Protocol::Connect => Answer::ConnectStream,
        };
        let mut headers = HeaderMap::new();
        let content_type = match answer {
            Answer::Grpc => {
                insert_grpc_request_headers(&mut headers);
                None
            }
            Answer::GrpcWeb => Some("application/grpc-web+proto"),
            Answer::ConnectUnary => Some("application/proto"),
            Answer::ConnectStream => Some("application/connect+proto"),
        };
        if let Some(content_type) = content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        if protocol == Protocol::Connect {
            headers.insert(CONNECT_PROTOCOL_VERSION, HeaderValue::from_static("1"));
        }
        add_headers(&mut headers, extra, authorization);
        let frames = match answer {
            // A Connect unary call carries its one message bare.
            Answer::ConnectUnary => payload.messages.clone(),
            _ => payload.messages.iter().map(|message| frame(message)).collect(),
        };
        Ok(Self { uri, headers, frames, answer, decode: payload.decode })
    }

    /// The request of a call with `left` of its deadline, if it has one.
    fn request(&self, left: Option<Duration>) -> Request<()> {
        let mut request = Request::new(());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        if let Some(left) = left {
            let (name, value) = timeout_header(self.answer, left);
            request.headers_mut().insert(name, value);
        }
        request
    }
}

/// Frames an encoded message as one length-prefixed gRPC frame.
pub(super) fn frame(message: &[u8]) -> Bytes {
    Bytes::from(framing::encode(0, message))
}

/// Makes one call on `connection`, by `deadline` if it has one; returns how
/// many response messages it received.
pub(super) async fn call(
    connection: &mut Connection,
    template: &CallTemplate,
    deadline: Option<std::time::Instant>,
) -> Result<u64, Status> {
    let _stream = connection.stream_slot().await;
    // Errs when the connection is closed.
    std::future::poll_fn(|cx| connection.send.poll_ready(cx)).await.map_err(h2_status)?;
    let left = match deadline.map(|deadline| deadline.saturating_duration_since(std::time::Instant::now())) {
        // A deadline already past ends the call before it has a stream, as in grpc-go.
        Some(Duration::ZERO) => {
            return Err(Status::deadline_exceeded("the deadline passed before the call was sent"));
        }
        left => left,
    };
    let request = template.request(left);
    let (response, mut body) = connection.send.send_request(request, false).map_err(h2_status)?;
    let last = template.frames.len().saturating_sub(1);
    for (index, frame) in template.frames.iter().enumerate() {
        body.send_data(frame.clone(), index == last).map_err(h2_status)?;
    }
    let response = response.await.map_err(h2_status)?;
    let (parts, mut stream) = response.into_parts();
    if parts.status != http::StatusCode::OK {
        if template.answer == Answer::ConnectUnary {
            let body = read_body(&mut stream).await?;
            return Err(unary_error(parts.status, &body, tonic::metadata::MetadataMap::new()));
        }
        return Err(Status::new(
            codes::from_http_status(parts.status),
            format!("HTTP status {}", parts.status),
        ));
    }
    // A trailers-only response carries its status in the headers.
    if matches!(template.answer, Answer::Grpc | Answer::GrpcWeb)
        && let Some(outcome) = grpc_status(&parts.headers)
    {
        return outcome.map(|()| 0);
    }
    match template.answer {
        Answer::Grpc => {
            let (received, _) = read_messages(&mut stream, None, template.decode).await?;
            match stream.trailers().await.map_err(h2_status)? {
                Some(trailers) => ended_with(&trailers).map(|()| received),
                None => Err(Status::internal("response ended without trailers")),
            }
        }
        Answer::GrpcWeb => {
            match read_messages(&mut stream, Some(GRPC_WEB_TRAILERS), template.decode).await? {
                (received, Some(trailers)) => ended_with(&grpc_web_trailers(&trailers)).map(|()| received),
                (_, None) => Err(Status::internal("response ended without its trailers message")),
            }
        }
        Answer::ConnectUnary => {
            let body = read_body(&mut stream).await?;
            if !template.decode {
                return Ok(1);
            }
            ResponseMessage::decode(body.as_slice())
                .map(|_| 1)
                .map_err(|error| Status::internal(format!("undecodable response: {error}")))
        }
        Answer::ConnectStream => {
            match read_messages(&mut stream, Some(framing::END_STREAM), template.decode).await? {
                (received, Some(end)) => ended_with(&end_of_stream(&end)).map(|()| received),
                (_, None) => Err(Status::internal("response ended without an end-of-stream message")),
            }
        }
    }
}

/// The call's outcome from its trailers.
fn ended_with(trailers: &HeaderMap) -> Result<(), Status> {
    grpc_status(trailers).unwrap_or_else(|| Err(Status::internal("trailers without grpc-status")))
}

/// gRPC-Web's trailers message (`name: value` lines) as headers; lines that
/// are not a header are left out.
fn grpc_web_trailers(block: &[u8]) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    for line in block.split(|byte| *byte == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|byte| *byte == b':') else { continue };
        let (name, value) = (line[..colon].to_ascii_lowercase(), line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(&name), HeaderValue::from_bytes(value)) {
            trailers.append(name, value);
        }
    }
    trailers
}

/// A whole response body, at most [`MAX_UNARY_BODY`] bytes.
async fn read_body(stream: &mut RecvStream) -> Result<Vec<u8>, Status> {
    let mut body = Vec::new();
    while let Some(chunk) = stream.data().await {
        let chunk = chunk.map_err(h2_status)?;
        let _ = stream.flow_control().release_capacity(chunk.len());
        if body.len() + chunk.len() > MAX_UNARY_BODY {
            return Err(Status::resource_exhausted(format!("the response is over {MAX_UNARY_BODY} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads and decodes every response message until the body ends; with
/// `last`, the protocol's flag of its closing message (gRPC-Web's trailers,
/// Connect's end of stream), whose payload is returned.
///
/// Messages are decoded where they lie in each chunk, into one reused
/// `ResponseMessage`: only a message split across chunks is copied, and no
/// message allocates, so the load generator does not become the bottleneck.
async fn read_messages(
    stream: &mut RecvStream,
    last: Option<u8>,
    decode: bool,
) -> Result<(u64, Option<Bytes>), Status> {
    let mut pending = BytesMut::new();
    let mut message = ResponseMessage::default();
    let mut received = 0;
    let mut closing = None;
    while let Some(chunk) = stream.data().await {
        let chunk = chunk.map_err(h2_status)?;
        // Hand the window back at once, as the connection would otherwise stall.
        let _ = stream.flow_control().release_capacity(chunk.len());
        if closing.is_some() && !chunk.is_empty() {
            return Err(Status::internal("response data after its closing message"));
        }
        if pending.is_empty() {
            let mut rest: &[u8] = &chunk;
            let (decoded, end) = decode_complete(&mut rest, decode.then_some(&mut message), last)?;
            received += decoded;
            closing = closing.or(end);
            pending.extend_from_slice(rest);
        } else {
            pending.extend_from_slice(&chunk);
            let mut rest: &[u8] = &pending;
            let (decoded, end) = decode_complete(&mut rest, decode.then_some(&mut message), last)?;
            received += decoded;
            closing = closing.or(end);
            let consumed = pending.len() - rest.len();
            pending.advance(consumed);
        }
    }
    if !pending.is_empty() {
        return Err(Status::internal("response body ended inside a message"));
    }
    Ok((received, closing))
}

/// Decodes the whole messages at the front of `data` into `message`, leaving
/// `data` at the first incomplete one; returns how many it decoded and, when
/// it reached one, the payload of the closing message flagged `last`.
/// Without a `message` to decode into, messages are only counted.
fn decode_complete(
    data: &mut &[u8],
    mut message: Option<&mut ResponseMessage>,
    last: Option<u8>,
) -> Result<(u64, Option<Bytes>), Status> {
    let mut decoded = 0;
    while let Some((framed, rest)) = framing::split(data) {
        *data = rest;
        if last.is_some_and(|last| framed.flags == last) {
            if !rest.is_empty() {
                return Err(Status::internal("response data after its closing message"));
            }
            return Ok((decoded, Some(Bytes::copy_from_slice(framed.payload))));
        }
        if framed.compressed {
            return Err(Status::internal("compressed response, but none was asked for"));
        }
        if let Some(message) = message.as_deref_mut() {
            message.clear();
            message
                .merge(framed.payload)
                .map_err(|error| Status::internal(format!("undecodable response: {error}")))?;
        }
        decoded += 1;
    }
    Ok((decoded, None))
}

/// The call's outcome from `grpc-status` (and `grpc-message`), if the map has one.
fn grpc_status(headers: &HeaderMap) -> Option<Result<(), Status>> {
    let code = Code::from_bytes(headers.get(GRPC_STATUS)?.as_bytes());
    Some(match code {
        Code::Ok => Ok(()),
        code => {
            let message = headers.get(GRPC_MESSAGE).map(|value| String::from_utf8_lossy(value.as_bytes()));
            Err(Status::new(code, message.unwrap_or_default()))
        }
    })
}

/// Maps a transport error to the status code gRPC gives it.
fn h2_status(error: h2::Error) -> Status {
    if error.is_io() || error.is_go_away() {
        return Status::unavailable(one_line(&error));
    }
    Status::from_error(Box::new(error))
}

#[cfg(test)]
mod tests {
    use connect_proto::RequestMessage;

    use super::*;

    #[test]
    fn frames_carry_a_prefix_and_the_encoded_message() {
        let message = RequestMessage { request_data: "ab".into(), count: 10, interval_ms: 0 };
        let framed = frame(&message.encode_to_vec());
        assert_eq!(framed.as_ref(), &[0, 0, 0, 0, 6, 0x0a, 2, b'a', b'b', 0x10, 10]);
    }

    #[test]
    fn decodes_whole_messages_and_leaves_the_partial_one() {
        let mut bytes = Vec::new();
        for text in ["one", "two"] {
            let message = ResponseMessage { response_data: text.into() };
            bytes.extend_from_slice(&[0, 0, 0, 0, message.encoded_len() as u8]);
            bytes.extend_from_slice(&message.encode_to_vec());
        }
        let whole = bytes.len();
        bytes.extend_from_slice(&[0, 0, 0, 0, 9, 0x0a]);
        let mut data: &[u8] = &bytes;
        let mut message = ResponseMessage::default();
        assert_eq!(decode_complete(&mut data, Some(&mut message), None).unwrap(), (2, None));
        assert_eq!(message.response_data, "two");
        assert_eq!(data, &bytes[whole..]);
        let mut compressed: &[u8] = &[1, 0, 0, 0, 0];
        assert_eq!(
            decode_complete(&mut compressed, Some(&mut message), None).unwrap_err().code(),
            Code::Internal
        );
    }

    #[test]
    fn the_closing_message_of_grpc_web_and_connect_ends_the_body() {
        let mut bytes = framing::encode(0, &ResponseMessage { response_data: "one".into() }.encode_to_vec());
        bytes.extend(framing::encode(GRPC_WEB_TRAILERS, b"grpc-status:0\r\nx-message-count: 1\r\n"));
        let mut data: &[u8] = &bytes;
        let mut message = ResponseMessage::default();
        let (decoded, trailers) =
            decode_complete(&mut data, Some(&mut message), Some(GRPC_WEB_TRAILERS)).unwrap();
        assert_eq!(decoded, 1);
        let trailers = grpc_web_trailers(&trailers.unwrap());
        assert_eq!(
            (trailers["grpc-status"].as_bytes(), trailers["x-message-count"].as_bytes()),
            (&b"0"[..], &b"1"[..])
        );
        assert!(matches!(ended_with(&trailers), Ok(())));
        bytes.extend(framing::encode(0, b""));
        let mut data: &[u8] = &bytes;
        let error = decode_complete(&mut data, Some(&mut message), Some(GRPC_WEB_TRAILERS)).unwrap_err();
        assert_eq!(error.message(), "response data after its closing message");
    }

    #[test]
    fn grpc_status_reads_code_and_message() {
        let mut headers = HeaderMap::new();
        assert!(grpc_status(&headers).is_none());
        headers.insert("grpc-status", HeaderValue::from_static("0"));
        assert!(matches!(grpc_status(&headers), Some(Ok(()))));
        headers.insert("grpc-status", HeaderValue::from_static("3"));
        headers.insert("grpc-message", HeaderValue::from_static("count must be at most 5"));
        let status = grpc_status(&headers).and_then(Result::err).expect("an error status");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "count must be at most 5");
    }
}
