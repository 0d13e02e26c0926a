//! The WebSocket protocol between the page and the server, as types:
//! [`Command`] is what the page sends, [`Event`] what the server answers.
//!
//! One socket per call; every message is a JSON text frame. The page sends:
//!
//! - `{"type":"start","method":"/ConnectService/UnaryRPC","metadata":{"authorization":"Bearer t"},"timeoutMs":1000}`:
//!   first, once. `metadata` (optional) is the request metadata, lower-case
//!   keys (`-bin` values in base64); `grpc-*` and HTTP's own headers are
//!   refused. `timeoutMs` (optional) is sent as `grpc-timeout`.
//! - `{"type":"message","json":{"requestData":"ping"}}`: one request message,
//!   in canonical proto3 JSON (snake_case names accepted). For a method whose
//!   client sends one message (unary, server streaming) the request is
//!   half-closed after it.
//! - `{"type":"halfClose"}`: the client has no more messages.
//! - `{"type":"cancel"}`: cancels the call (as `RST_STREAM(CANCEL)` would).
//!
//! The server answers with events, each with `t`, the milliseconds since
//! the call began:
//!
//! - `{"type":"request","t":0,"method":..,"headers":{..}}`: the request
//!   headers the service got (`content-type`, `te`, `grpc-timeout`, metadata).
//! - `{"type":"sent","t":..,"json":{..}}`: a request message went in (as the
//!   server read it); `{"type":"halfClosed","t":..}`: the request ended.
//! - `{"type":"headers","t":..,"headers":{..}}`: the response headers
//!   (`x-request-id`, `x-served-by`, ...).
//! - `{"type":"message","t":..,"json":{..}}`: one response message.
//! - `{"type":"trailers","t":..,"status":3,"code":"INVALID_ARGUMENT","message":"..","trailers":{..},"details":[..],"trailersOnly":false}`:
//!   the end of the call; `details` are the `grpc-status-details-bin`
//!   details as JSON with their `@type` (`google.rpc.BadRequest`, ...).
//! - `{"type":"cancelled","t":..,"code":"CANCELLED","method":..}`: the call
//!   was cancelled at the page's request.
//! - `{"type":"error","t":..,"message":"..","fatal":false}`: input the
//!   playground refused (invalid JSON, a message after the half-close, a
//!   message over `--max-recv-message-size`, ...); the call goes on. With
//!   `"fatal":true` there is no call (an unknown method, bad metadata, too
//!   many calls at once, no `start` in time).
//!
//! The server closes the socket after `trailers`, `cancelled` or a fatal
//! `error`. A socket that drops mid-call cancels the call (the access log
//! says `CANCELLED`).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, de::Error as _};
use serde_json::{Map, Value};

/// A command from the page.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub(super) enum Command {
    /// Starts the call; the first command, and only that once.
    Start(Start),
    /// One request message.
    Message {
        /// The message in proto3 JSON.
        json: Value,
    },
    /// The client has no more messages.
    HalfClose,
    /// Cancels the call.
    Cancel,
}

/// What the page asked for in its `start` command.
///
/// Each field says what is wrong with it in words the page's user can act
/// on, rather than in serde's.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Start {
    /// `/package.Service/Method`; empty when the page sent none (which
    /// [`Command::parse`] refuses).
    #[serde(default, deserialize_with = "method")]
    pub(super) method: String,
    /// The request metadata; its values are checked where they become headers.
    #[serde(default, deserialize_with = "metadata")]
    pub(super) metadata: Map<String, Value>,
    /// Sent as `grpc-timeout`.
    #[serde(default, deserialize_with = "timeout_ms")]
    pub(super) timeout_ms: Option<u64>,
    /// A W3C `traceparent`: the call continues that trace (a WebSocket
    /// cannot carry the page's own headers to each call).
    #[serde(default)]
    pub(super) traceparent: Option<String>,
}

/// Why a `start` without a method is refused.
const START_NEEDS_METHOD: &str = "start needs \"method\": \"/package.Service/Method\"";
/// Why a text that is JSON but no command is refused.
const NOT_A_COMMAND: &str = "a command is a JSON object with a \"type\"";

impl Command {
    /// The command in a text message, or why it is none.
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(text).map_err(|error| format!("invalid JSON: {error}"))?;
        let kind = value.get("type").and_then(Value::as_str).ok_or(NOT_A_COMMAND)?.to_owned();
        match Self::deserialize(value) {
            Ok(Self::Start(start)) if start.method.is_empty() => Err(START_NEEDS_METHOD.to_owned()),
            Ok(command) => Ok(command),
            // `start`'s fields explain themselves; `message` has one field
            // to miss; `halfClose` and `cancel` take anything.
            Err(error) => Err(match kind.as_str() {
                "start" => error.to_string(),
                "message" => "message needs \"json\": the request message".to_owned(),
                _ => format!("unknown command type {kind:?}: expected start, message, halfClose or cancel"),
            }),
        }
    }
}

/// `start`'s `method`: a string.
fn method<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    String::deserialize(deserializer).map_err(|_| D::Error::custom(START_NEEDS_METHOD))
}

/// `start`'s `metadata`: an object, or `null` for none.
fn metadata<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Map<String, Value>, D::Error> {
    Option::<Map<String, Value>>::deserialize(deserializer)
        .map(Option::unwrap_or_default)
        .map_err(|_| D::Error::custom("\"metadata\" must be an object of strings"))
}

/// `start`'s `timeoutMs`: a whole number, or `null` for none.
fn timeout_ms<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    Option::<u64>::deserialize(deserializer)
        .map_err(|_| D::Error::custom("\"timeoutMs\" must be a whole number of milliseconds"))
}

/// Headers as the page sees them: a repeated key's values joined with `, `.
pub(super) type Headers = BTreeMap<String, String>;

/// An event for the page; `t` is the milliseconds since the call began.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub(super) enum Event {
    /// The request headers the service got.
    Request {
        /// Always 0: the call begins with its request (a whole number on the wire).
        t: u32,
        /// The method's path.
        method: String,
        /// The request headers.
        headers: Headers,
    },
    /// A request message went in.
    Sent {
        /// When.
        t: f64,
        /// The message as the server read it (`null` if it cannot be shown).
        json: Value,
    },
    /// The request ended.
    HalfClosed {
        /// When.
        t: f64,
    },
    /// The response headers.
    Headers {
        /// When.
        t: f64,
        /// The response headers.
        headers: Headers,
    },
    /// One response message.
    Message {
        /// When.
        t: f64,
        /// The message in proto3 JSON (`null` if it cannot be shown).
        json: Value,
    },
    /// The end of the call.
    Trailers {
        /// When.
        t: f64,
        /// The status code as a number.
        status: i32,
        /// The status code's canonical name.
        code: &'static str,
        /// The status message.
        message: String,
        /// The trailers (or the headers of a trailers-only response).
        trailers: Headers,
        /// The `grpc-status-details-bin` details, each with its `@type`.
        details: Vec<Value>,
        /// Whether the response was headers only.
        trailers_only: bool,
    },
    /// The call was cancelled at the page's request.
    Cancelled {
        /// When.
        t: f64,
        /// Always `CANCELLED`.
        code: &'static str,
        /// The method's path.
        method: String,
    },
    /// Input the playground refused.
    Error {
        /// When.
        t: f64,
        /// Why.
        message: String,
        /// Whether there is no call (else the call goes on).
        fatal: bool,
    },
}

impl Event {
    /// An `error` event.
    pub(super) fn error(t: f64, message: impl Into<String>, fatal: bool) -> Self {
        Self::Error { t, message: message.into(), fatal }
    }

    /// Whether the server closes the socket after this event.
    pub(super) fn ends_call(&self) -> bool {
        match self {
            Self::Trailers { .. } | Self::Cancelled { .. } => true,
            Self::Error { fatal, .. } => *fatal,
            _ => false,
        }
    }

    /// The event as a text message.
    pub(super) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an event has string keys only")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parses_the_commands() {
        let start = Command::parse(r#"{"type":"start","method":"/ConnectService/UnaryRPC","timeoutMs":100}"#);
        let Ok(Command::Start(start)) = start else { panic!("a start: {start:?}") };
        assert_eq!(start.method, "/ConnectService/UnaryRPC");
        assert_eq!(start.timeout_ms, Some(100));
        assert!(start.metadata.is_empty());
        // The page sends `null` for what it has not got.
        let start = r#"{"type":"start","method":"/a/b","metadata":null,"timeoutMs":null}"#;
        let Ok(Command::Start(start)) = Command::parse(start) else { panic!("a start") };
        assert_eq!((start.metadata.len(), start.timeout_ms), (0, None));
        let Ok(Command::Message { json }) = Command::parse(r#"{"type":"message","json":{"a":1}}"#) else {
            panic!("a message")
        };
        assert_eq!(json, json!({"a": 1}));
        assert!(matches!(Command::parse(r#"{"type":"halfClose"}"#), Ok(Command::HalfClose)));
        assert!(matches!(Command::parse(r#"{"type":"cancel","why":"bored"}"#), Ok(Command::Cancel)));
    }

    #[test]
    fn says_what_is_wrong_with_a_command() {
        let error = |text| Command::parse(text).unwrap_err();
        assert_eq!(error("{"), "invalid JSON: EOF while parsing an object at line 1 column 1");
        assert_eq!(error("[1]"), "a command is a JSON object with a \"type\"");
        assert_eq!(error(r#"{"type":5}"#), "a command is a JSON object with a \"type\"");
        assert_eq!(
            error(r#"{"type":"nope"}"#),
            "unknown command type \"nope\": expected start, message, halfClose or cancel"
        );
        assert_eq!(error(r#"{"type":"message"}"#), "message needs \"json\": the request message");
        assert_eq!(error(r#"{"type":"start"}"#), "start needs \"method\": \"/package.Service/Method\"");
        assert_eq!(
            error(r#"{"type":"start","method":5}"#),
            "start needs \"method\": \"/package.Service/Method\""
        );
        assert_eq!(
            error(r#"{"type":"start","method":"/a/b","metadata":[]}"#),
            "\"metadata\" must be an object of strings"
        );
        assert_eq!(
            error(r#"{"type":"start","method":"/a/b","timeoutMs":-1}"#),
            "\"timeoutMs\" must be a whole number of milliseconds"
        );
    }

    #[test]
    fn events_are_the_json_the_page_reads() {
        let headers = Headers::from([("te".to_owned(), "trailers".to_owned())]);
        let request = Event::Request { t: 0, method: "/a/b".to_owned(), headers: headers.clone() };
        assert_eq!(
            request.to_json(),
            r#"{"type":"request","t":0,"method":"/a/b","headers":{"te":"trailers"}}"#
        );
        let sent = Event::Sent { t: 1.5, json: Value::Null };
        assert_eq!(sent.to_json(), r#"{"type":"sent","t":1.5,"json":null}"#);
        assert_eq!(Event::HalfClosed { t: 2.0 }.to_json(), r#"{"type":"halfClosed","t":2.0}"#);
        let trailers = Event::Trailers {
            t: 3.25,
            status: 3,
            code: "INVALID_ARGUMENT",
            message: "no".to_owned(),
            trailers: headers,
            details: vec![json!({"@type": "x"})],
            trailers_only: true,
        };
        assert_eq!(
            trailers.to_json(),
            r#"{"type":"trailers","t":3.25,"status":3,"code":"INVALID_ARGUMENT","message":"no","trailers":{"te":"trailers"},"details":[{"@type":"x"}],"trailersOnly":true}"#
        );
        let cancelled = Event::Cancelled { t: 4.0, code: "CANCELLED", method: "/a/b".to_owned() };
        assert_eq!(cancelled.to_json(), r#"{"type":"cancelled","t":4.0,"code":"CANCELLED","method":"/a/b"}"#);
        assert_eq!(
            Event::error(0.0, "too many", true).to_json(),
            r#"{"type":"error","t":0.0,"message":"too many","fatal":true}"#
        );
    }

    #[test]
    fn the_socket_closes_after_the_last_event() {
        assert!(Event::Cancelled { t: 0.0, code: "CANCELLED", method: String::new() }.ends_call());
        assert!(Event::error(0.0, "no call", true).ends_call());
        assert!(!Event::error(0.0, "the call goes on", false).ends_call());
        assert!(!Event::HalfClosed { t: 0.0 }.ends_call());
    }
}
