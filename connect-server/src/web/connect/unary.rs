//! A Connect unary call: one bare message each way (`application/proto` or
//! `application/json`), compression in `content-encoding`, the response
//! metadata as headers and its trailers as `trailer-` headers, and errors
//! as JSON with the protocol's HTTP status.

use std::{convert::Infallible, sync::Arc};

use bytes::Bytes;
use futures::stream;
use http::{
    HeaderMap, HeaderName, HeaderValue, Request, Response, Version,
    header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE},
};
use http_body::Frame;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited, StreamBody};
use prost_reflect::MessageDescriptor;
use tonic::{Status, body::Body};
use tower::Service;

use connect_proto::{
    framing::{self, COMPRESSED},
    headers::{GRPC_ACCEPT_ENCODING, GRPC_ENCODING, GRPC_TIMEOUT},
};

use super::{
    accepted_encoding, call_inner, encoding_of, error, failing, grpc_headers, mark, protocol_headers,
    response_metadata,
};
use crate::transport::{BodyTimeout, Watch};
use crate::web::{
    WebShared,
    compression::{Encoding, too_large},
    envelope::envelope,
    protocol::Codec,
    schema::Schema,
};

/// JSON responses shorter than this are sent uncompressed (as connect-go does):
/// compressing them costs more than it saves.
const MIN_COMPRESS_BYTES: usize = 1024;

/// What the response of a unary call needs from its request.
struct UnaryCall {
    codec: Codec,
    /// The response message's type, for JSON.
    output: Option<MessageDescriptor>,
    /// The compression the client accepts, for JSON.
    accept: Option<Encoding>,
}

/// Serves one Connect unary call through `inner`.
pub(super) async fn serve<S, B>(
    inner: S,
    shared: &WebShared,
    request: Request<hyper::body::Incoming>,
    codec: Codec,
) -> Response<Body>
where
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible>,
    B: http_body::Body<Data = Bytes, Error = Status> + Send + 'static,
{
    let (request, call) = translate(shared, request, codec);
    let response = call_inner(inner, request).await;
    answer(response, &call, shared).await
}

/// The gRPC request for a Connect unary request: the message is read, and
/// converted from JSON, as the service reads its body; what cannot be
/// translated fails that body with the reason (see `connect::failing`).
fn translate(
    shared: &WebShared,
    request: Request<hyper::body::Incoming>,
    codec: Codec,
) -> (Request<Body>, UnaryCall) {
    let (parts, body) = request.into_parts();
    let mut headers = grpc_headers(&parts.headers);
    let method = shared.schema.method(parts.uri.path());
    let accept = accepted_encoding(&parts.headers, &ACCEPT_ENCODING);
    let checked = protocol_headers(&parts.headers).and_then(|timeout| {
        encoding_of(&parts.headers, &CONTENT_ENCODING).map(|encoding| (timeout, encoding))
    });
    let body = match checked {
        Err(status) => failing(status),
        Ok((timeout, encoding)) => {
            if let Some(timeout) = timeout {
                headers.insert(GRPC_TIMEOUT, timeout);
            }
            if codec == Codec::Proto {
                // Passed on compressed: the service decompresses it under its own limit.
                if let Some(encoding) = encoding {
                    headers.insert(GRPC_ENCODING, HeaderValue::from_static(encoding.name()));
                }
                if let Some(accept) = accept {
                    headers.insert(GRPC_ACCEPT_ENCODING, HeaderValue::from_static(accept.name()));
                }
            }
            let input = method.as_ref().map(|method| method.input());
            let mut body = BodyTimeout::new(body, shared.body_read_timeout, Watch::Whole);
            if let Some(budget) = &shared.receiving {
                body = body.whole_within(Arc::clone(budget));
            }
            let read = read_message(body, codec, encoding, input, shared.messages.max_recv);
            Body::new(StreamBody::new(stream::once(read)))
        }
    };
    let mut grpc = Request::new(body);
    *grpc.method_mut() = parts.method;
    *grpc.uri_mut() = parts.uri;
    *grpc.version_mut() = Version::HTTP_2;
    *grpc.headers_mut() = headers;
    *grpc.extensions_mut() = parts.extensions;
    mark(&mut grpc);
    (grpc, UnaryCall { codec, output: method.map(|method| method.output()), accept })
}

/// The request message as a gRPC frame: read whole (within `limit`), and
/// converted to protobuf when it is JSON of a known method (`input`). For a
/// method the server does not have, no message: the service answers UNIMPLEMENTED.
async fn read_message(
    body: BodyTimeout<hyper::body::Incoming>,
    codec: Codec,
    encoding: Option<Encoding>,
    input: Option<MessageDescriptor>,
    limit: usize,
) -> Result<Frame<Bytes>, Status> {
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.is::<LengthLimitError>() => return Err(too_large(limit)),
        Err(error) => return Err(read_failed(error)),
    };
    let message = match (codec, input) {
        (Codec::Proto, _) => envelope(if encoding.is_some() { COMPRESSED } else { 0 }, &bytes),
        (Codec::Json, Some(input)) => {
            let json = match encoding {
                Some(encoding) => encoding.decompress(&bytes, limit)?,
                None => bytes.to_vec(),
            };
            envelope(0, &Schema::json_to_proto(&input, &json)?)
        }
        (Codec::Json, None) => Bytes::new(),
    };
    Ok(Frame::data(message))
}

/// Why a request body could not be read: it stalled (the read timeout's
/// status), it was malformed (HTTP/1.1 framing the parser refused: the
/// client's mistake, `INVALID_ARGUMENT`), or the client went away.
fn read_failed(error: Box<dyn std::error::Error + Send + Sync>) -> Status {
    let error = match error.downcast::<Status>() {
        Ok(status) => return *status,
        Err(error) => error,
    };
    let malformed = error
        .downcast_ref::<hyper::Error>()
        .and_then(std::error::Error::source)
        .and_then(|cause| cause.downcast_ref::<std::io::Error>())
        .filter(|cause| {
            matches!(cause.kind(), std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData)
        });
    match malformed {
        Some(cause) => Status::invalid_argument(format!("the request body is malformed: {cause}")),
        None => Status::cancelled(format!("the request ended early: {error}")),
    }
}

/// The Connect response for the gRPC response of a unary call.
async fn answer<B>(response: Response<B>, call: &UnaryCall, shared: &WebShared) -> Response<Body>
where
    B: http_body::Body<Data = Bytes, Error = Status> + Send + 'static,
{
    let (parts, body) = response.into_parts();
    let mut metadata = response_metadata(&parts.headers);
    // A trailers-only response (an error before any message): the status is in the headers.
    if let Some(status) = Status::from_header_map(&parts.headers) {
        return error_response(&status, metadata, &shared.schema);
    }
    let limit = shared.messages.max_send + framing::PREFIX_LEN;
    let collected = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected,
        Err(error) => {
            let status = match error.downcast::<Status>() {
                Ok(status) => *status,
                Err(error) => Status::internal(format!("cannot read the response: {error}")),
            };
            return error_response(&status, metadata, &shared.schema);
        }
    };
    let trailers = collected.trailers().cloned().unwrap_or_default();
    for (name, value) in &response_metadata(&trailers) {
        if let Ok(name) = HeaderName::from_bytes(format!("trailer-{name}").as_bytes()) {
            metadata.append(name, value.clone());
        }
    }
    let status = Status::from_header_map(&trailers)
        .unwrap_or_else(|| Status::unknown("the service ended the call without a status"));
    if status.code() != tonic::Code::Ok {
        return error_response(&status, metadata, &shared.schema);
    }
    let data = collected.to_bytes();
    let message = match framing::split(&data) {
        Some((message, [])) => message,
        _ => {
            let status = Status::internal("the service did not send exactly one response message");
            return error_response(&status, metadata, &shared.schema);
        }
    };
    match encode(message, &parts.headers, call, shared) {
        Ok((body, content_type, encoding)) => {
            metadata.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            if let Some(encoding) = encoding {
                metadata.insert(CONTENT_ENCODING, HeaderValue::from_static(encoding.name()));
            }
            let mut response = Response::new(Body::new(Full::new(body)));
            *response.headers_mut() = metadata;
            response
        }
        Err(status) => error_response(&status, metadata, &shared.schema),
    }
}

/// The response message as the client asked for it: its body, content type and compression.
fn encode(
    message: framing::Message<'_>,
    grpc_headers: &HeaderMap,
    call: &UnaryCall,
    shared: &WebShared,
) -> Result<(Bytes, &'static str, Option<Encoding>), Status> {
    let sent_with = if message.compressed {
        let name = grpc_headers.get(GRPC_ENCODING).and_then(|value| value.to_str().ok()).unwrap_or("?");
        Encoding::parse(name)?
    } else {
        None
    };
    match (call.codec, &call.output) {
        (Codec::Proto, _) => Ok((Bytes::copy_from_slice(message.payload), "application/proto", sent_with)),
        (Codec::Json, Some(output)) => {
            let proto = match sent_with {
                Some(encoding) => encoding.decompress(message.payload, shared.messages.max_send)?,
                None => message.payload.to_vec(),
            };
            let json = Schema::proto_to_json(output, &proto)?;
            match call.accept {
                Some(encoding) if json.len() >= MIN_COMPRESS_BYTES => {
                    Ok((Bytes::from(encoding.compress(&json)), "application/json", Some(encoding)))
                }
                _ => Ok((Bytes::from(json), "application/json", None)),
            }
        }
        (Codec::Json, None) => Err(Status::internal("a response to a method the server does not have")),
    }
}

/// An error response, with the call's metadata.
fn error_response(status: &Status, metadata: HeaderMap, schema: &Schema) -> Response<Body> {
    let (parts, body) = error::unary_error_response(status, schema).into_parts();
    let mut response = Response::from_parts(parts, Body::new(Full::new(body)));
    for (name, value) in &metadata {
        if name != CONTENT_TYPE && name != CONTENT_ENCODING {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}
