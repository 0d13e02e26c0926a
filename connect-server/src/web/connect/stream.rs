//! A Connect streaming call (`application/connect+proto`, `+json`): enveloped
//! messages each way, compression in `connect-content-encoding`, and an
//! end-of-stream message with the status and trailers; the HTTP status is
//! always 200 once the call has started.

use std::{convert::Infallible, sync::Arc};

use bytes::Bytes;
use futures::{Stream, stream};
use http::{HeaderMap, HeaderValue, Request, Response, Version, header::CONTENT_TYPE};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use prost_reflect::MessageDescriptor;
use serde_json::{Map, Value, json};
use tonic::{Status, body::Body};
use tower::Service;

use connect_proto::{
    framing::COMPRESSED,
    headers::{
        CONNECT_ACCEPT_ENCODING, CONNECT_CONTENT_ENCODING, GRPC_ACCEPT_ENCODING, GRPC_ENCODING, GRPC_TIMEOUT,
    },
};

use super::{
    accepted_encoding, call_inner, encoding_of, error, failing, grpc_headers, mark, protocol_headers,
    response_metadata,
};
use crate::web::{
    WebShared,
    compression::Encoding,
    envelope::{Decoder, END_STREAM, envelope},
    protocol::Codec,
    schema::Schema,
};

/// Serves one Connect streaming call through `inner`.
pub(super) async fn serve<S, B>(
    inner: S,
    shared: Arc<WebShared>,
    request: Request<hyper::body::Incoming>,
    codec: Codec,
) -> Response<Body>
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible>,
    B: http_body::Body<Data = Bytes, Error = Status> + Send + 'static,
{
    let content_type = match codec {
        Codec::Proto => HeaderValue::from_static("application/connect+proto"),
        Codec::Json => HeaderValue::from_static("application/connect+json"),
    };
    let (request, output) = translate(&shared, request, codec);
    let (parts, body) = call_inner(inner, request).await.into_parts();
    let mut metadata = response_metadata(&parts.headers);
    let sent_with = parts.headers.get(GRPC_ENCODING).and_then(|value| value.to_str().ok()).map(str::to_owned);
    // A trailers-only response: the status is in the headers, and no message follows.
    if let Some(status) = Status::from_header_map(&parts.headers) {
        let end = end_of_stream(Some(&status), &HeaderMap::new(), &shared.schema);
        return respond(content_type, metadata, Body::new(http_body_util::Full::new(end)));
    }
    let responses = match (codec, output) {
        (Codec::Json, Some(output)) => {
            let sent_with = sent_with.as_deref().map(Encoding::parse).transpose().ok().flatten().flatten();
            Body::new(StreamBody::new(json_responses(body, output, sent_with, shared)))
        }
        _ => {
            if let Some(name) = sent_with.and_then(|name| HeaderValue::from_str(&name).ok()) {
                metadata.insert(CONNECT_CONTENT_ENCODING, name);
            }
            Body::new(StreamBody::new(binary_responses(body, shared)))
        }
    };
    respond(content_type, metadata, responses)
}

/// The gRPC request for a Connect streaming request, and the response type
/// for JSON; what cannot be translated fails the body with the reason (see
/// `connect::failing`).
fn translate(
    shared: &Arc<WebShared>,
    request: Request<hyper::body::Incoming>,
    codec: Codec,
) -> (Request<Body>, Option<MessageDescriptor>) {
    let (parts, body) = request.into_parts();
    let mut headers = grpc_headers(&parts.headers);
    let method = shared.schema.method(parts.uri.path());
    let checked = protocol_headers(&parts.headers).and_then(|timeout| {
        encoding_of(&parts.headers, &CONNECT_CONTENT_ENCODING).map(|encoding| (timeout, encoding))
    });
    let body = match (checked, codec, &method) {
        (Err(status), _, _) => failing(status),
        // Connect's envelopes are gRPC's frames: the body goes on as it came.
        (Ok((timeout, encoding)), Codec::Proto, _) => {
            headers.extend(timeout.map(|timeout| (GRPC_TIMEOUT, timeout)));
            if let Some(encoding) = encoding {
                headers.insert(GRPC_ENCODING, HeaderValue::from_static(encoding.name()));
            }
            if let Some(accept) = accepted_encoding(&parts.headers, &CONNECT_ACCEPT_ENCODING) {
                headers.insert(GRPC_ACCEPT_ENCODING, HeaderValue::from_static(accept.name()));
            }
            Body::new(body)
        }
        (Ok((timeout, encoding)), Codec::Json, Some(method)) => {
            headers.extend(timeout.map(|timeout| (GRPC_TIMEOUT, timeout)));
            let limit = shared.messages.max_recv;
            Body::new(StreamBody::new(json_requests(body, method.input(), encoding, limit)))
        }
        // A method the server does not have: the service answers UNIMPLEMENTED.
        (Ok(_), Codec::Json, None) => Body::empty(),
    };
    let mut grpc = Request::new(body);
    *grpc.method_mut() = parts.method;
    *grpc.uri_mut() = parts.uri;
    *grpc.version_mut() = Version::HTTP_2;
    *grpc.headers_mut() = headers;
    *grpc.extensions_mut() = parts.extensions;
    mark(&mut grpc);
    (grpc, method.map(|method| method.output()))
}

fn respond(content_type: HeaderValue, mut metadata: HeaderMap, body: Body) -> Response<Body> {
    metadata.insert(CONTENT_TYPE, content_type);
    let mut response = Response::new(body);
    *response.headers_mut() = metadata;
    response
}

/// The request messages, JSON envelopes in, gRPC frames of protobuf out.
fn json_requests(
    body: hyper::body::Incoming,
    input: MessageDescriptor,
    encoding: Option<Encoding>,
    limit: usize,
) -> impl Stream<Item = Result<Frame<Bytes>, Status>> + Send {
    stream::unfold(Some((body, Decoder::new(limit))), move |state| {
        let input = input.clone();
        async move {
            let (mut body, mut decoder) = state?;
            loop {
                match decoder.next() {
                    Ok(Some((flags, message))) => {
                        let converted = json_message(flags, &message, &input, encoding, limit);
                        return Some(match converted {
                            Ok(frame) => (Ok(Frame::data(frame)), Some((body, decoder))),
                            Err(status) => (Err(status), None),
                        });
                    }
                    Ok(None) => {}
                    Err(status) => return Some((Err(status), None)),
                }
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            decoder.push(&data);
                        }
                    }
                    Some(Err(error)) => {
                        return Some((
                            Err(Status::cancelled(format!("the request ended early: {error}"))),
                            None,
                        ));
                    }
                    None if decoder.has_partial() => {
                        let status = Status::invalid_argument("the request stream ended inside a message");
                        return Some((Err(status), None));
                    }
                    None => return None,
                }
            }
        }
    })
}

/// One JSON request envelope as a gRPC frame of protobuf.
fn json_message(
    flags: u8,
    message: &[u8],
    input: &MessageDescriptor,
    encoding: Option<Encoding>,
    limit: usize,
) -> Result<Bytes, Status> {
    if flags & !COMPRESSED != 0 {
        return Err(Status::invalid_argument(format!("invalid envelope flags {flags:#04x} in a request")));
    }
    let json = match (flags & COMPRESSED != 0, encoding) {
        (false, _) => message.to_vec(),
        (true, Some(encoding)) => encoding.decompress(message, limit)?,
        (true, None) => {
            return Err(Status::invalid_argument("a compressed message without connect-content-encoding"));
        }
    };
    Ok(envelope(0, &Schema::json_to_proto(input, &json)?))
}

/// The response frames as they come (gRPC's frames are Connect's envelopes),
/// then the end-of-stream message made from the trailers.
fn binary_responses<B>(
    body: B,
    shared: Arc<WebShared>,
) -> impl Stream<Item = Result<Frame<Bytes>, Infallible>> + Send
where
    B: http_body::Body<Data = Bytes, Error = Status> + Send + 'static,
{
    stream::unfold(Some(Box::pin(body)), move |state| {
        let shared = Arc::clone(&shared);
        async move {
            let mut body = state?;
            let frame = match body.frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => return Some((Ok(Frame::data(data)), Some(body))),
                    Err(frame) => end_from_trailers(frame.into_trailers().ok().as_ref(), &shared.schema),
                },
                Some(Err(status)) => end_of_stream(Some(&status), &HeaderMap::new(), &shared.schema),
                None => end_from_trailers(None, &shared.schema),
            };
            Some((Ok(Frame::data(frame)), None))
        }
    })
}

/// The response messages as JSON envelopes, then the end-of-stream message.
fn json_responses<B>(
    body: B,
    output: MessageDescriptor,
    sent_with: Option<Encoding>,
    shared: Arc<WebShared>,
) -> impl Stream<Item = Result<Frame<Bytes>, Infallible>> + Send
where
    B: http_body::Body<Data = Bytes, Error = Status> + Send + 'static,
{
    let limit = shared.messages.max_send;
    stream::unfold(Some((Box::pin(body), Decoder::new(limit))), move |state| {
        let (output, shared) = (output.clone(), Arc::clone(&shared));
        async move {
            let (mut body, mut decoder) = state?;
            let schema = &shared.schema;
            loop {
                let failed = match decoder.next() {
                    Ok(Some((flags, message))) => {
                        let proto = match (flags & COMPRESSED != 0, sent_with) {
                            (true, Some(encoding)) => encoding.decompress(&message, limit),
                            (true, None) => {
                                Err(Status::internal("a compressed response without grpc-encoding"))
                            }
                            (false, _) => Ok(message.to_vec()),
                        };
                        match proto.and_then(|proto| Schema::proto_to_json(&output, &proto)) {
                            Ok(json) => {
                                return Some((Ok(Frame::data(envelope(0, &json))), Some((body, decoder))));
                            }
                            Err(status) => status,
                        }
                    }
                    Ok(None) => match body.frame().await {
                        Some(Ok(frame)) => match frame.into_data() {
                            Ok(data) => {
                                decoder.push(&data);
                                continue;
                            }
                            Err(frame) => {
                                let end = end_from_trailers(frame.into_trailers().ok().as_ref(), schema);
                                return Some((Ok(Frame::data(end)), None));
                            }
                        },
                        Some(Err(status)) => status,
                        None => return Some((Ok(Frame::data(end_from_trailers(None, schema))), None)),
                    },
                    Err(status) => status,
                };
                return Some((
                    Ok(Frame::data(end_of_stream(Some(&failed), &HeaderMap::new(), schema))),
                    None,
                ));
            }
        }
    })
}

/// The end-of-stream message for a gRPC response that ended with `trailers`.
fn end_from_trailers(trailers: Option<&HeaderMap>, schema: &Schema) -> Bytes {
    let empty = HeaderMap::new();
    let trailers = trailers.unwrap_or(&empty);
    let status = Status::from_header_map(trailers)
        .unwrap_or_else(|| Status::unknown("the service ended the call without a status"));
    let failed = (status.code() != tonic::Code::Ok).then_some(&status);
    end_of_stream(failed, &response_metadata(trailers), schema)
}

/// The end-of-stream message: the error, if the call failed, and the trailers.
fn end_of_stream(status: Option<&Status>, trailers: &HeaderMap, schema: &Schema) -> Bytes {
    let mut end = Map::new();
    if let Some(status) = status {
        end.insert("error".into(), error::error_json(status, schema));
    }
    let mut metadata = Map::new();
    for name in trailers.keys() {
        let values: Vec<Value> = trailers
            .get_all(name)
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into())
            .collect();
        metadata.insert(name.as_str().into(), Value::Array(values));
    }
    if !metadata.is_empty() {
        end.insert("metadata".into(), Value::Object(metadata));
    }
    let json = serde_json::to_vec(&Value::Object(end)).unwrap_or_else(|_| json!({}).to_string().into_bytes());
    envelope(END_STREAM, &json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_carries_the_error_and_the_trailers() {
        let schema = crate::web::schema::connect_service();
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("4"));
        trailers.insert("grpc-message", HeaderValue::from_static("too%20slow"));
        trailers.insert("x-message-count", HeaderValue::from_static("2"));
        let end = end_from_trailers(Some(&trailers), &schema);
        assert_eq!(end[0], END_STREAM);
        let json: Value = serde_json::from_slice(&end[5..]).unwrap();
        assert_eq!(
            json,
            json!({"error": {"code": "deadline_exceeded", "message": "too slow"}, "metadata": {"x-message-count": ["2"]}})
        );
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        trailers.remove("grpc-message");
        let json: Value = serde_json::from_slice(&end_from_trailers(Some(&trailers), &schema)[5..]).unwrap();
        assert_eq!(json, json!({"metadata": {"x-message-count": ["2"]}}));
    }
}
