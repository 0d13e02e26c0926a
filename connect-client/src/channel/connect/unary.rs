//! A unary call over Connect: the bare message out, the bare message (or
//! Connect's JSON error with an HTTP status) back; a unary call's trailers
//! come as `trailer-` headers.

use bytes::Bytes;
use connect_proto::{
    framing,
    headers::{GRPC_ACCEPT_ENCODING, GRPC_ENCODING},
};
use http::{HeaderMap, HeaderName, Request, Response, StatusCode, header};
use http_body::Frame;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use prost_reflect::MethodDescriptor;
use tonic::{Code, Status, body::Body, metadata::MetadataMap};
use tower::BoxError;

use super::{
    MAX_MESSAGE, PROTOCOL_ERROR, check_content_type, failed, grpc_headers, json, metadata, request_headers,
    send, status_headers,
};
use crate::channel::protocol::{Codec, Transport};

/// Prefix of the headers that carry a unary call's trailers.
const TRAILER_PREFIX: &str = "trailer-";

/// Sends the gRPC unary `request` for `method` as a Connect unary call.
pub(super) async fn call(
    inner: Transport,
    request: Request<Body>,
    method: &MethodDescriptor,
    codec: Codec,
) -> Result<Response<Body>, BoxError> {
    let (mut parts, body) = request.into_parts();
    let bytes = match Limited::new(body, MAX_MESSAGE + framing::PREFIX_LEN).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => return Ok(failed(Status::from_error(error))),
    };
    let Some((message, [])) = framing::split(&bytes) else {
        return Ok(failed(Status::internal("a unary call carries exactly one request message")));
    };
    let (content_type, payload) = match codec {
        Codec::Proto => ("application/proto", Bytes::copy_from_slice(message.payload)),
        Codec::Json => match json::to_json(&method.input(), message.payload) {
            Ok(json) => ("application/json", json),
            Err(status) => return Ok(failed(status)),
        },
    };
    let mut headers = request_headers(&parts.headers, content_type);
    if message.compressed
        && let Some(encoding) = parts.headers.get(GRPC_ENCODING)
    {
        headers.insert(header::CONTENT_ENCODING, encoding.clone());
    }
    if let Some(accepted) = parts.headers.get(GRPC_ACCEPT_ENCODING) {
        headers.insert(header::ACCEPT_ENCODING, accepted.clone());
    }
    parts.headers = headers;
    let response = send(inner, Request::from_parts(parts, Body::new(Full::new(payload)))).await?;
    Ok(answer(response, method, codec).await)
}

/// The gRPC response for the Connect unary `response`.
async fn answer(response: Response<Body>, method: &MethodDescriptor, codec: Codec) -> Response<Body> {
    let (parts, body) = response.into_parts();
    let (metadata, trailers) = split_trailers(&parts.headers);
    let body = match Limited::new(body, MAX_MESSAGE).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            let mut status = Status::from_error(error);
            if status.code() == Code::Unknown && status.message() == "length limit exceeded" {
                status = Status::resource_exhausted(format!("the response is over {MAX_MESSAGE} bytes"));
            }
            return failed(status);
        }
    };
    if parts.status != StatusCode::OK {
        let status = super::unary_error(parts.status, &body, MetadataMap::from_headers(metadata));
        let mut response = failed(status);
        response.headers_mut().extend(trailers);
        return response;
    }
    let expected = match codec {
        Codec::Proto => "application/proto",
        Codec::Json => "application/json",
    };
    if let Err(status) = check_content_type(&parts.headers, expected) {
        return failed(status);
    }
    let encoding = parts.headers.get(header::CONTENT_ENCODING).filter(|value| *value != "identity").cloned();
    let payload = match (codec, &encoding) {
        (Codec::Proto, _) => body,
        (Codec::Json, None) => match json::from_json(&method.output(), &body) {
            Ok(proto) => proto,
            Err(status) => return failed(status),
        },
        (Codec::Json, Some(_)) => {
            return failed(Status::new(PROTOCOL_ERROR, "the server compressed a JSON response unasked"));
        }
    };
    let Ok(len) = u32::try_from(payload.len()) else {
        return failed(Status::resource_exhausted("the response is over 4 GiB"));
    };
    let mut headers = grpc_headers(metadata);
    if let Some(encoding) = encoding {
        headers.insert(GRPC_ENCODING, encoding);
    }
    let mut grpc_trailers = status_headers(Status::ok(""));
    grpc_trailers.extend(trailers);
    let prefix = framing::prefix(headers.contains_key(GRPC_ENCODING), len);
    let frames = [
        Ok::<_, Status>(Frame::data(Bytes::copy_from_slice(&prefix))),
        Ok(Frame::data(payload)),
        Ok(Frame::trailers(grpc_trailers)),
    ];
    let mut answer = Response::new(Body::new(StreamBody::new(futures::stream::iter(frames))));
    *answer.headers_mut() = headers;
    answer
}

/// A unary response's headers split into its metadata and its trailers (the
/// `trailer-` headers, without the prefix).
fn split_trailers(headers: &HeaderMap) -> (HeaderMap, HeaderMap) {
    let mut trailers = HeaderMap::new();
    let mut rest = HeaderMap::new();
    for (name, value) in &metadata(headers) {
        match name.as_str().strip_prefix(TRAILER_PREFIX).map(|name| HeaderName::from_bytes(name.as_bytes())) {
            Some(Ok(trailer)) => {
                trailers.append(trailer, value.clone());
            }
            _ => {
                rest.append(name, value.clone());
            }
        }
    }
    (rest, trailers)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn trailer_headers_are_trailers() {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/proto"));
        headers.insert("x-served-by", HeaderValue::from_static("a"));
        headers.insert("trailer-x-message-count", HeaderValue::from_static("1"));
        let (rest, trailers) = split_trailers(&headers);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest["x-served-by"], "a");
        assert_eq!(trailers.len(), 1);
        assert_eq!(trailers["x-message-count"], "1");
    }
}
