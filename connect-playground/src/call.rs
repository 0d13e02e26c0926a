//! One playground call: the `start` command turned into a gRPC request into
//! the service stack, request messages from JSON into its body, and its
//! response (headers, each message, trailers) turned into events for the page.

use std::{
    net::SocketAddr,
    pin::Pin,
    time::{Duration, Instant},
};

use bytes::{Buf, Bytes, BytesMut};
use futures::{Stream, StreamExt, future::BoxFuture, stream};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Version};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use prost_reflect::MessageDescriptor;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, body::Body};
use tower::ServiceExt as _;

use connect_proto::{
    codes, framing,
    headers::{GRPC_TIMEOUT, insert_grpc_request_headers, is_reserved},
    timeout,
};

use super::{
    Playground, Stack,
    protocol::{Event, Headers, Start},
};
use crate::Schema;

/// Request messages that may wait for a service that reads them slowly.
const QUEUED_REQUESTS: usize = 16;
/// The longest `timeoutMs`: eight digits, about 27 hours.
const MAX_TIMEOUT_MS: u64 = 99_999_999;

/// The response side of a call, as events.
pub(super) type Events = Pin<Box<dyn Stream<Item = Event> + Send>>;

/// The request side of a call in flight.
#[derive(Debug)]
pub(super) struct Call {
    started: Instant,
    path: String,
    input: MessageDescriptor,
    /// Whether the client may send more than one message.
    client_streaming: bool,
    /// The request body; `None` once half-closed.
    requests: Option<mpsc::Sender<Result<Frame<Bytes>, Status>>>,
    max_recv: usize,
    /// The flag that sets `max_recv`, for the error.
    max_recv_flag: &'static str,
}

/// Starts the call `start` asks for through `playground`'s stack, for `peer`:
/// the call, the `request` event, and the response events. An error is why
/// there is no call.
pub(super) fn start(
    playground: &Playground,
    start: Start,
    peer: SocketAddr,
) -> Result<(Call, Event, Events), String> {
    let started = Instant::now();
    let method = playground.schema.method(&start.method).ok_or_else(|| {
        format!(
            "unknown method {:?}: expected /package.Service/Method, as /schema.json lists them",
            start.method
        )
    })?;
    let headers = request_headers(&start)?;
    let request_event =
        Event::Request { t: 0, method: start.method.clone(), headers: header_object(&headers) };
    let (requests, body) = mpsc::channel(QUEUED_REQUESTS);
    let mut request = Request::new(Body::new(StreamBody::new(ReceiverStream::new(body))));
    *request.method_mut() = Method::POST;
    *request.uri_mut() =
        start.method.parse().map_err(|_| format!("{:?} is not a valid request path", start.method))?;
    *request.version_mut() = Version::HTTP_2;
    *request.headers_mut() = headers;
    // A stack that translates to another protocol (the client's Connect) needs the method's types.
    request.extensions_mut().insert(method.clone());
    let stack: Stack = (playground.stack)(Some(peer));
    let response: BoxFuture<'static, Response<Body>> = Box::pin(async move {
        match stack.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    });
    let events = responses(response, method.output(), playground.schema.clone(), started);
    let call = Call {
        started,
        path: start.method,
        input: method.input(),
        client_streaming: method.is_client_streaming(),
        requests: Some(requests),
        max_recv: playground.settings.max_message_bytes,
        max_recv_flag: playground.settings.max_message_flag,
    };
    Ok((call, request_event, events))
}

/// `traceparent`, the W3C header a call's trace continues from.
const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// `text` as a `traceparent` value: version `00`, a trace id, a parent id
/// and flags, in lower-case hex.
fn trace_parent(text: &str) -> Result<HeaderValue, String> {
    let hex = |part: &str, len: usize| {
        part.len() == len && part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let parts: Vec<&str> = text.split('-').collect();
    let valid = matches!(parts.as_slice(), [version, trace, parent, flags]
        if *version == "00" && hex(trace, 32) && hex(parent, 16) && hex(flags, 2));
    if !valid {
        return Err(format!(
            "traceparent must be 00-<32 hex digits>-<16 hex digits>-<2 hex digits>, not {text:?}"
        ));
    }
    HeaderValue::from_str(text).map_err(|_| format!("traceparent {text:?} is not a header value"))
}

/// The request headers: gRPC's own, the deadline and the page's metadata.
fn request_headers(start: &Start) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::with_capacity(start.metadata.len() + 3);
    for (key, value) in &start.metadata {
        let name = HeaderName::from_bytes(key.as_bytes())
            .ok()
            .filter(|name| name.as_str() == key)
            .ok_or_else(|| format!("metadata key {key:?} is not a valid lower-case header name"))?;
        if is_reserved(&name) {
            return Err(format!(
                "metadata key {key:?} is reserved: gRPC and HTTP set it (the deadline is timeoutMs)"
            ));
        }
        let text = value.as_str().ok_or_else(|| format!("metadata {key:?} must be a string"))?;
        let value = HeaderValue::from_str(text)
            .ok()
            .filter(|_| text.bytes().all(|byte| byte == b'\t' || (b' '..=b'~').contains(&byte)))
            .ok_or_else(|| format!("metadata {key:?} must be printable ASCII"))?;
        headers.append(name, value);
    }
    insert_grpc_request_headers(&mut headers);
    if let Some(traceparent) = &start.traceparent {
        headers.insert(TRACEPARENT, trace_parent(traceparent)?);
    }
    if let Some(millis) = start.timeout_ms {
        if millis == 0 || millis > MAX_TIMEOUT_MS {
            return Err(format!("timeoutMs must be from 1 to {MAX_TIMEOUT_MS}, not {millis}"));
        }
        headers.insert(GRPC_TIMEOUT, timeout::encode(Duration::from_millis(millis)));
    }
    Ok(headers)
}

impl Call {
    /// Milliseconds since the call began.
    pub(super) fn elapsed_ms(&self) -> f64 {
        millis(self.started.elapsed())
    }

    /// Sends one request message (`json`); the events to show (`sent`, and
    /// `halfClosed` when the method takes one message), or why not.
    pub(super) fn send(&mut self, json: &Value) -> Result<Vec<Event>, String> {
        let Some(requests) = &self.requests else {
            return Err("the request is half-closed: no more messages".to_owned());
        };
        let text = serde_json::to_vec(json).expect("a JSON value writes");
        let proto =
            Schema::json_to_proto(&self.input, &text).map_err(|status| status.message().to_owned())?;
        if proto.len() > self.max_recv {
            return Err(format!(
                "the message is {} bytes, over the limit of {} ({})",
                proto.len(),
                self.max_recv,
                self.max_recv_flag
            ));
        }
        let as_read = Schema::proto_to_json(&self.input, &proto)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .unwrap_or(Value::Null);
        let mut frame = BytesMut::with_capacity(framing::PREFIX_LEN + proto.len());
        let len = u32::try_from(proto.len()).expect("messages are bounded far below 4 GiB");
        frame.extend_from_slice(&framing::prefix(false, len));
        frame.extend_from_slice(&proto);
        match requests.try_send(Ok(Frame::data(frame.freeze()))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                return Err(format!(
                    "the service is not reading: {QUEUED_REQUESTS} messages are already waiting"
                ));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Err("the service no longer reads requests".to_owned());
            }
        }
        let mut events = vec![Event::Sent { t: self.elapsed_ms(), json: as_read }];
        if !self.client_streaming {
            // A method that takes one message: the request ends with it, as a client's would.
            events.extend(self.half_close()?);
        }
        Ok(events)
    }

    /// Ends the request stream: the `halfClosed` event, or why not.
    pub(super) fn half_close(&mut self) -> Result<Vec<Event>, String> {
        match self.requests.take() {
            Some(_) => Ok(vec![Event::HalfClosed { t: self.elapsed_ms() }]),
            None => Err("the request is already half-closed".to_owned()),
        }
    }

    /// Cancels the call's request side: a handler still reading sees an
    /// error, not a clean end. (Dropping the response side is what ends it.)
    pub(super) fn cancel(&mut self) -> Event {
        if let Some(requests) = self.requests.take() {
            // A full queue or a service no longer reading: dropping the sender is enough.
            let _ = requests.try_send(Err(Status::cancelled("cancelled by the playground")));
        }
        Event::Cancelled { t: self.elapsed_ms(), code: "CANCELLED", method: self.path.clone() }
    }
}

/// Where the response is.
enum Phase {
    /// Waiting for the headers.
    Waiting(BoxFuture<'static, Response<Body>>),
    /// Reading the body: messages, then trailers.
    Body(Body, BytesMut),
    Done,
}

/// The response events of `response`, with message type `output`.
fn responses(
    response: BoxFuture<'static, Response<Body>>,
    output: MessageDescriptor,
    schema: Schema,
    started: Instant,
) -> Events {
    let events = stream::unfold(Phase::Waiting(response), move |phase| {
        let output = output.clone();
        let schema = schema.clone();
        async move {
            let t = || millis(started.elapsed());
            match phase {
                Phase::Done => None,
                Phase::Waiting(response) => {
                    let (parts, body) = response.await.into_parts();
                    if parts.headers.contains_key("grpc-status") {
                        // Trailers-only: the headers are the trailers, and nothing follows.
                        let event = trailers(t(), &parts.headers, true, &schema);
                        return Some((vec![event], Phase::Done));
                    }
                    let event = Event::Headers { t: t(), headers: header_object(&parts.headers) };
                    Some((vec![event], Phase::Body(body, BytesMut::new())))
                }
                Phase::Body(mut body, mut buffer) => match body.frame().await {
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => {
                            buffer.extend_from_slice(&data);
                            let events = messages(&mut buffer, &output, t());
                            Some((events, Phase::Body(body, buffer)))
                        }
                        Err(frame) => {
                            let headers = frame.into_trailers().unwrap_or_default();
                            Some((vec![trailers(t(), &headers, false, &schema)], Phase::Done))
                        }
                    },
                    Some(Err(status)) => {
                        let mut headers = HeaderMap::new();
                        // Only fails for a message that is not header text, which tonic escapes.
                        let _ = status.add_header(&mut headers);
                        Some((vec![trailers(t(), &headers, false, &schema)], Phase::Done))
                    }
                    None => {
                        let event = trailers(t(), &HeaderMap::new(), false, &schema);
                        Some((vec![event], Phase::Done))
                    }
                },
            }
        }
    });
    Box::pin(events.flat_map(stream::iter))
}

/// The whole messages at the front of `buffer`, as `message` events.
fn messages(buffer: &mut BytesMut, output: &MessageDescriptor, t: f64) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some((message, rest)) = framing::split(buffer) {
        let event = if message.compressed {
            Event::error(t, "a compressed response message (the playground asks for none)", false)
        } else {
            match Schema::proto_to_json(output, message.payload) {
                Ok(json) => Event::Message { t, json: serde_json::from_slice(&json).unwrap_or(Value::Null) },
                Err(status) => Event::error(t, status.message(), false),
            }
        };
        events.push(event);
        let used = buffer.len() - rest.len();
        buffer.advance(used);
    }
    events
}

/// The `trailers` event for a trailer block (or the headers of a trailers-only response).
fn trailers(t: f64, headers: &HeaderMap, trailers_only: bool, schema: &Schema) -> Event {
    let status = Status::from_header_map(headers)
        .unwrap_or_else(|| Status::unknown("the response ended without grpc-status"));
    let details = details(status.details(), schema);
    Event::Trailers {
        t,
        status: status.code() as i32,
        code: codes::canonical_name(status.code()),
        message: status.message().to_owned(),
        trailers: header_object(headers),
        details,
        trailers_only,
    }
}

/// The details of a `google.rpc.Status` (`grpc-status-details-bin`) as JSON, each with its `@type`.
fn details(encoded: &[u8], schema: &Schema) -> Vec<Value> {
    if encoded.is_empty() {
        return Vec::new();
    }
    let Some(details) = schema.status_details(encoded) else {
        return vec![json!({ "error": "grpc-status-details-bin is not a google.rpc.Status" })];
    };
    details
        .into_iter()
        .map(|detail| {
            let mut fields = match detail.json {
                Some(Value::Object(fields)) => fields,
                _ => Map::new(),
            };
            fields.insert("@type".to_owned(), Value::String(detail.type_url));
            Value::Object(fields)
        })
        .collect()
}

/// Headers as the page shows them.
fn header_object(headers: &HeaderMap) -> Headers {
    let mut object = Headers::new();
    for (name, value) in headers {
        let text = String::from_utf8_lossy(value.as_bytes());
        object
            .entry(name.as_str().to_owned())
            .and_modify(|previous| {
                previous.push_str(", ");
                previous.push_str(&text);
            })
            .or_insert_with(|| text.into_owned());
    }
    object
}

/// A duration in milliseconds, to the microsecond.
fn millis(elapsed: Duration) -> f64 {
    elapsed.as_micros() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(metadata: Value, timeout_ms: Option<u64>) -> Start {
        let Value::Object(metadata) = metadata else { panic!("an object") };
        Start { method: "/ConnectService/UnaryRPC".to_owned(), metadata, timeout_ms, traceparent: None }
    }

    #[test]
    fn a_traceparent_becomes_the_header_and_a_malformed_one_is_named() {
        let mut with = start(json!({}), None);
        with.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned());
        let headers = request_headers(&with).unwrap();
        assert_eq!(headers["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        with.traceparent = Some("00-XYZ-1-01".to_owned());
        assert_eq!(
            request_headers(&with).unwrap_err(),
            "traceparent must be 00-<32 hex digits>-<16 hex digits>-<2 hex digits>, not \"00-XYZ-1-01\""
        );
    }

    #[test]
    fn headers_carry_metadata_and_the_deadline() {
        let headers =
            request_headers(&start(json!({"authorization": "Bearer t", "x-a": "1"}), Some(250))).unwrap();
        assert_eq!(headers["content-type"], "application/grpc");
        assert_eq!(headers["te"], "trailers");
        assert_eq!(headers["grpc-timeout"], "250m");
        assert_eq!(headers["authorization"], "Bearer t");
        assert_eq!(headers["x-a"], "1");
    }

    #[test]
    fn refuses_reserved_and_malformed_metadata() {
        let error = |metadata: Value, timeout| request_headers(&start(metadata, timeout)).unwrap_err();
        assert_eq!(
            error(json!({"grpc-timeout": "1S"}), None),
            "metadata key \"grpc-timeout\" is reserved: gRPC and HTTP set it (the deadline is timeoutMs)"
        );
        assert_eq!(
            error(json!({"X-Upper": "1"}), None),
            "metadata key \"X-Upper\" is not a valid lower-case header name"
        );
        assert_eq!(error(json!({"x-n": 5}), None), "metadata \"x-n\" must be a string");
        assert_eq!(error(json!({"x-n": "é"}), None), "metadata \"x-n\" must be printable ASCII");
        assert_eq!(error(json!({}), Some(0)), "timeoutMs must be from 1 to 99999999, not 0");
    }

    #[test]
    fn header_objects_join_repeated_keys() {
        let mut headers = HeaderMap::new();
        headers.append("a", HeaderValue::from_static("1"));
        headers.append("a", HeaderValue::from_static("2"));
        assert_eq!(header_object(&headers), Headers::from([("a".to_owned(), "1, 2".to_owned())]));
    }
}
