//! What every call of a run sends: the method's path and kind, and its
//! request messages encoded once. For the ConnectService shortcuts
//! (`--rpc`) they are built from `--data-size` and `--count`; for `--call`
//! the method is found through reflection or `--proto`/`--protoset` (as
//! `call` finds it) and the `-d` JSON is encoded with prost-reflect.

use bytes::Bytes;
use connect_proto::{RequestMessage, RpcKind};
use prost::Message as _;
use prost_reflect::{DynamicMessage, MethodDescriptor};

use super::settings::{BenchCall, BenchSettings};
use crate::{
    call::{self, CallOptions},
    channel::{self, ChannelSettings, Codec},
    commands::dynamic::parse_json,
    error::ClientError,
    output::Output,
    schema::Schema,
};

/// The method a run calls and the encoded messages each call sends.
#[derive(Debug, Clone)]
pub(super) struct Payload {
    /// The HTTP path, `/Service/Method`.
    pub(super) path: String,
    /// How the report names the method.
    pub(super) name: String,
    /// Its call kind.
    pub(super) kind: RpcKind,
    /// The request messages, encoded, without framing.
    pub(super) messages: Vec<Bytes>,
    /// Whether responses are decoded as ConnectService's `ResponseMessage`
    /// (for `--call` they are counted, not decoded: bench does not know their type's cost).
    pub(super) decode: bool,
}

/// The payload of the run `settings` describe.
pub(super) async fn resolve(settings: &BenchSettings) -> Result<Payload, ClientError> {
    match &settings.call {
        None => Ok(connect_service(settings)),
        Some(call) => dynamic(settings, call).await,
    }
}

/// A ConnectService call of `--rpc`, its `request_data` `--data-size` bytes long.
fn connect_service(settings: &BenchSettings) -> Payload {
    let messages_per_call = settings.messages_per_call();
    let data = "x".repeat(settings.data_size);
    let requests = match settings.rpc {
        RpcKind::Unary => vec![RequestMessage { request_data: data, count: 0, interval_ms: 0 }],
        RpcKind::ServerStream => {
            vec![RequestMessage { request_data: data, count: messages_per_call, interval_ms: 0 }]
        }
        RpcKind::ClientStream | RpcKind::Bidi => {
            vec![RequestMessage { request_data: data, count: 0, interval_ms: 0 }; messages_per_call as usize]
        }
    };
    Payload {
        path: format!("/ConnectService/{}", settings.rpc.method()),
        name: settings.rpc.method().to_owned(),
        kind: settings.rpc,
        messages: requests.iter().map(|request| Bytes::from(request.encode_to_vec())).collect(),
        decode: true,
    }
}

/// The method `--call` names, from the schema files or the server's
/// reflection, with the `-d` messages encoded.
async fn dynamic(settings: &BenchSettings, call: &BenchCall) -> Result<Payload, ClientError> {
    let mut schema = match call.schema.load()? {
        Some(pool) => Schema::Files(pool),
        None => {
            let channel = ChannelSettings {
                addrs: settings.addrs.clone(),
                tls: settings.tls.clone(),
                connect_timeout: settings.connect_timeout,
                resolve_interval: std::time::Duration::ZERO,
                wait_for_ready: settings.wait_for_ready,
                keepalive: None,
                protocol: settings.protocol,
                codec: Codec::Proto,
                http1: false,
            };
            let connected = channel::open(&channel, &Output::stdio()).await?;
            let options = CallOptions {
                headers: settings.headers.clone(),
                verbose: false,
                token: settings.token.clone(),
                compress: None,
                output: Output::stdio(),
            };
            let channel = call::call_channel(connected.transport, &options)?;
            Schema::new(None, channel, settings.timeout)
        }
    };
    let method = schema.method(&call.method).await?;
    let text = match &call.input {
        Some(input) => input.read().await?,
        None => "{}".to_owned(),
    };
    let messages = requests(&method, &text, settings.messages_per_call())?;
    let service = method.parent_service().full_name().to_owned();
    Ok(Payload {
        path: format!("/{service}/{}", method.name()),
        name: format!("{service}/{}", method.name()),
        kind: RpcKind::of(method.is_client_streaming(), method.is_server_streaming()),
        messages: messages.iter().map(|message| Bytes::from(message.encode_to_vec())).collect(),
        decode: false,
    })
}

/// The requests of each call in `text`: one JSON object for a method taking
/// one request; for a request stream, a JSON array of objects (sent in
/// order), or one object sent `repeat` times.
fn requests(method: &MethodDescriptor, text: &str, repeat: u32) -> Result<Vec<DynamicMessage>, ClientError> {
    let input = method.input();
    if !method.is_client_streaming() {
        return Ok(vec![parse_json(&input, text, None)?]);
    }
    if !text.trim_start().starts_with('[') {
        let message = parse_json(&input, text, None)?;
        return Ok(vec![message; repeat as usize]);
    }
    let values: Vec<serde_json::Value> = serde_json::from_str(text).map_err(|error| {
        ClientError::Other(format!("invalid JSON array of {}: {error}", input.full_name()))
    })?;
    values
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            DynamicMessage::deserialize(input.clone(), value).map_err(|error| {
                ClientError::Other(format!(
                    "invalid JSON for {} (element {} of the array): {error}",
                    input.full_name(),
                    index + 1
                ))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(name: &str) -> MethodDescriptor {
        let pool =
            prost_reflect::DescriptorPool::decode(connect_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
        crate::schema::find_method(&pool, name).expect("the method")
    }

    #[test]
    fn a_stream_takes_an_array_or_one_object_repeated() {
        let stream = method("ConnectService/ClientStreamRPC");
        let messages = requests(&stream, r#"[{"requestData":"a"},{"requestData":"b"}]"#, 10).unwrap();
        let data: Vec<String> = messages
            .iter()
            .map(|message| message.get_field_by_name("request_data").unwrap().as_str().unwrap().to_owned())
            .collect();
        assert_eq!(data, ["a", "b"]);
        assert_eq!(requests(&stream, r#"{"requestData":"a"}"#, 3).unwrap().len(), 3);
        let error = requests(&stream, r#"[{"requestData":"a"},{"nope":1}]"#, 1).unwrap_err().to_string();
        assert!(error.starts_with("invalid JSON for RequestMessage (element 2 of the array): "), "{error}");
    }

    #[test]
    fn bad_json_says_where() {
        let unary = method("ConnectService/UnaryRPC");
        let error = requests(&unary, "{\"requestData\": }", 1).unwrap_err().to_string();
        assert_eq!(error, "invalid JSON for RequestMessage: expected value at line 1 column 17");
    }
}
