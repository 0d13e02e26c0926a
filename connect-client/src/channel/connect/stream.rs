//! A stream over Connect: gRPC's length-prefixed messages each way (the
//! envelope is the same), compression named in `connect-content-encoding`,
//! and an end-of-stream message whose error and metadata become the trailers.

use bytes::{Buf, Bytes, BytesMut};
use connect_proto::{
    framing::{self, END_STREAM, PREFIX_LEN},
    headers::{CONNECT_ACCEPT_ENCODING, CONNECT_CONTENT_ENCODING, GRPC_ACCEPT_ENCODING, GRPC_ENCODING},
};
use futures::{Stream, StreamExt, stream};
use http::{HeaderMap, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Limited, StreamBody};
use prost_reflect::{MessageDescriptor, MethodDescriptor};
use serde_json::Value;
use tonic::{Status, body::Body, metadata::MetadataMap};
use tower::BoxError;

use super::{
    MAX_MESSAGE, PROTOCOL_ERROR, append_metadata, check_content_type, failed, grpc_headers, json, metadata,
    request_headers, send, status_headers, status_of_error,
};
use crate::channel::protocol::{Codec, Transport};

/// Most bytes of a failed stream's body read for its error.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Sends the gRPC streaming `request` for `method` as a Connect stream.
pub(super) async fn call(
    inner: Transport,
    request: Request<Body>,
    method: &MethodDescriptor,
    codec: Codec,
) -> Result<Response<Body>, BoxError> {
    let (mut parts, body) = request.into_parts();
    let content_type = match codec {
        Codec::Proto => "application/connect+proto",
        Codec::Json => "application/connect+json",
    };
    let mut headers = request_headers(&parts.headers, content_type);
    if let Some(encoding) = parts.headers.get(GRPC_ENCODING) {
        headers.insert(CONNECT_CONTENT_ENCODING, encoding.clone());
    }
    if let Some(accepted) = parts.headers.get(GRPC_ACCEPT_ENCODING) {
        headers.insert(CONNECT_ACCEPT_ENCODING, accepted.clone());
    }
    parts.headers = headers;
    let body = match codec {
        // The envelopes are gRPC's frames: they go out as they are.
        Codec::Proto => body,
        Codec::Json => {
            let input = method.input();
            let messages = envelopes(body).map(move |message| {
                let (flags, payload) = message?;
                let json = json::to_json(&input, &payload)?;
                Ok::<_, Status>(Frame::data(Bytes::from(framing::encode(flags, &json))))
            });
            Body::new(StreamBody::new(messages))
        }
    };
    let response = send(inner, Request::from_parts(parts, body)).await?;
    Ok(answer(response, method.output(), codec, content_type).await)
}

/// The gRPC response for the Connect stream `response`.
async fn answer(
    response: Response<Body>,
    output: MessageDescriptor,
    codec: Codec,
    content_type: &str,
) -> Response<Body> {
    let (parts, body) = response.into_parts();
    let metadata = metadata(&parts.headers);
    if parts.status != StatusCode::OK {
        // A stream that did not start: no end-of-stream message, only the HTTP status.
        let text = match Limited::new(body, MAX_ERROR_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => Bytes::new(),
        };
        let status = super::unary_error(parts.status, &text, MetadataMap::from_headers(metadata));
        return failed(status);
    }
    if let Err(status) = check_content_type(&parts.headers, content_type) {
        return failed(status);
    }
    let mut headers = grpc_headers(metadata);
    if let Some(encoding) = parts.headers.get(CONNECT_CONTENT_ENCODING).filter(|value| *value != "identity") {
        headers.insert(GRPC_ENCODING, encoding.clone());
    }
    let messages = Box::pin(envelopes(body));
    let frames = stream::unfold(Some(messages), move |state| {
        let output = output.clone();
        async move {
            let mut messages = state?;
            Some(match messages.next().await {
                Some(Ok((flags, payload))) if flags & END_STREAM != 0 => {
                    // Nothing may follow the end of the stream.
                    (Ok(Frame::trailers(end_of_stream(&payload))), None)
                }
                Some(Ok((flags, payload))) => {
                    (response_message(&output, codec, flags, payload).map(Frame::data), Some(messages))
                }
                Some(Err(status)) => (Err(status), None),
                None => {
                    let status =
                        Status::new(PROTOCOL_ERROR, "the stream ended without an end-of-stream message");
                    (Err(status), None)
                }
            })
        }
    });
    let mut answer = Response::new(Body::new(StreamBody::new(frames)));
    *answer.headers_mut() = headers;
    answer
}

/// A response message as a gRPC frame.
fn response_message(
    output: &MessageDescriptor,
    codec: Codec,
    flags: u8,
    payload: Bytes,
) -> Result<Bytes, Status> {
    let proto = match codec {
        Codec::Proto => payload,
        Codec::Json if flags & framing::COMPRESSED != 0 => {
            return Err(Status::new(PROTOCOL_ERROR, "the server compressed a JSON message unasked"));
        }
        Codec::Json => json::from_json(output, &payload)?,
    };
    Ok(Bytes::from(framing::encode(flags & framing::COMPRESSED, &proto)))
}

/// The gRPC trailers for an end-of-stream message: its error (none: OK) and metadata.
pub(crate) fn end_of_stream(payload: &[u8]) -> HeaderMap {
    let end: Value = match serde_json::from_slice(payload) {
        Ok(end @ Value::Object(_)) => end,
        _ => {
            let status = Status::new(
                PROTOCOL_ERROR,
                "the server sent an end-of-stream message that is not a JSON object",
            );
            return status_headers(status);
        }
    };
    let status = match end.get("error") {
        None | Some(Value::Null) => Status::ok(""),
        Some(error) => status_of_error(error, MetadataMap::new()).unwrap_or_else(|| {
            Status::new(
                PROTOCOL_ERROR,
                format!("the server ended the stream with an error without a known code: {error}"),
            )
        }),
    };
    let mut trailers = status_headers(status);
    append_metadata(&mut trailers, end.get("metadata"));
    trailers
}

/// The enveloped messages of `body` (flags and payload), none over
/// `MAX_MESSAGE`; an error ends the stream.
fn envelopes(body: Body) -> impl Stream<Item = Result<(u8, Bytes), Status>> + Send + 'static {
    stream::unfold(Some((body, BytesMut::new(), false)), |state| async move {
        let (mut body, mut buffer, mut done) = state?;
        loop {
            if let Some(prefix) = buffer.first_chunk::<PREFIX_LEN>() {
                let (flags, len) = framing::decode_prefix(*prefix);
                let len = len as usize;
                if len > MAX_MESSAGE {
                    let status = Status::resource_exhausted(format!(
                        "a message of {len} bytes is over the limit of {MAX_MESSAGE}"
                    ));
                    return Some((Err(status), None));
                }
                if buffer.len() >= PREFIX_LEN + len {
                    buffer.advance(PREFIX_LEN);
                    let payload = buffer.split_to(len).freeze();
                    return Some((Ok((flags, payload)), Some((body, buffer, done))));
                }
            }
            if done {
                return if buffer.is_empty() {
                    None
                } else {
                    Some((Err(Status::new(PROTOCOL_ERROR, "the stream ended inside a message")), None))
                };
            }
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        buffer.extend_from_slice(&data);
                    }
                }
                Some(Err(status)) => return Some((Err(status), None)),
                None => done = true,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use tonic::Code;

    use super::*;

    #[test]
    fn the_end_of_the_stream_becomes_trailers() {
        let trailers = end_of_stream(br#"{"error":{"code":"deadline_exceeded","message":"too slow"},"metadata":{"x-message-count":["2"]}}"#);
        assert_eq!(trailers["grpc-status"], "4");
        assert_eq!(trailers["grpc-message"], "too%20slow");
        assert_eq!(trailers["x-message-count"], "2");
        let trailers = end_of_stream(br#"{"metadata":{"x-message-count":["1"],"bad name":["x"]}}"#);
        assert_eq!(trailers["grpc-status"], "0");
        assert_eq!(
            trailers.get_all("x-message-count").iter().collect::<Vec<_>>(),
            [&HeaderValue::from_static("1")]
        );
        let trailers = end_of_stream(b"[1]");
        assert_eq!(trailers["grpc-status"], "13");
        let trailers = end_of_stream(br#"{"error":{"code":"nope"}}"#);
        assert_eq!(trailers["grpc-status"], "13");
    }

    #[tokio::test]
    async fn envelopes_split_across_chunks_and_refuse_a_cut_message() {
        let mut data = framing::encode(0, b"ab");
        data.extend(framing::encode(END_STREAM, b"{}"));
        let chunks: Vec<Result<Frame<Bytes>, Status>> =
            data.chunks(3).map(|chunk| Ok(Frame::data(Bytes::copy_from_slice(chunk)))).collect();
        let body = Body::new(StreamBody::new(stream::iter(chunks)));
        let messages: Vec<_> = envelopes(body).collect().await;
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].as_ref().unwrap(), &(0, Bytes::from_static(b"ab")));
        assert_eq!(messages[1].as_ref().unwrap(), &(END_STREAM, Bytes::from_static(b"{}")));
        let cut = Body::new(http_body_util::Full::new(Bytes::from(framing::encode(0, b"abc")[..6].to_vec())));
        let messages: Vec<_> = envelopes(cut).collect().await;
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].as_ref().unwrap_err().code(), Code::Internal);
    }
}
