//! `call`: any method of any server, found through reflection or the
//! schema files. The request is JSON
//! (the method's input message in proto3's JSON mapping; one object per
//! line for a request stream), each response is printed as one JSON line.

use std::{path::PathBuf, time::Duration};

use futures::StreamExt;
use http::uri::PathAndQuery;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, MethodDescriptor, SerializeOptions};
use tokio::io::AsyncReadExt;
use tonic::{
    Status, Streaming,
    client::Grpc,
    codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder},
};

use crate::{
    call::{CallChannel, with_deadline},
    error::ClientError,
    output::Output,
    schema::Schema,
};

/// Where `call` reads its requests from (`-d`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// `-d JSON`.
    Text(String),
    /// `-d @file`.
    File(PathBuf),
    /// `-d @-`.
    Stdin,
}

impl Input {
    /// Parses a `-d` value: `@-` is stdin, `@path` a file, anything else the JSON itself.
    pub fn parse(value: &str) -> Self {
        match value.strip_prefix('@') {
            Some("-") => Self::Stdin,
            Some(path) => Self::File(path.into()),
            None => Self::Text(value.to_owned()),
        }
    }

    /// The text of the input.
    pub(crate) async fn read(&self) -> Result<String, ClientError> {
        match self {
            Self::Text(text) => Ok(text.clone()),
            Self::File(path) => std::fs::read_to_string(path)
                .map_err(|error| ClientError::Other(format!("cannot read {}: {error}", path.display()))),
            Self::Stdin => {
                let mut text = String::new();
                tokio::io::stdin()
                    .read_to_string(&mut text)
                    .await
                    .map_err(|error| ClientError::Other(format!("cannot read stdin: {error}")))?;
                Ok(text)
            }
        }
    }
}

/// What `call` calls, with what.
#[derive(Debug, Clone)]
pub struct DynamicCall {
    /// `Service/Method` (or `Service.Method`), the service fully qualified.
    pub method: String,
    /// The requests; none: one empty message.
    pub input: Option<Input>,
}

/// Calls `call.method`, found in `schema`, on `channel` and prints each
/// response as one JSON line.
pub async fn call(
    mut schema: Schema,
    channel: CallChannel,
    compress: Option<CompressionEncoding>,
    call: DynamicCall,
    timeout: Option<Duration>,
    output: &Output,
) -> Result<(), ClientError> {
    let method = schema.method(&call.method).await?;
    let text = match &call.input {
        Some(input) => input.read().await?,
        None => "{}".to_owned(),
    };
    let requests = parse_requests(&method, &text)?;
    let path = PathAndQuery::try_from(format!("/{}/{}", method.parent_service().full_name(), method.name()))
        .map_err(|error| ClientError::Other(format!("invalid method path: {error}")))?;
    let codec = DynamicCodec(method.output());
    let mut grpc = Grpc::new(channel);
    if let Some(encoding) = compress {
        grpc = grpc.send_compressed(encoding).accept_compressed(encoding);
    }
    grpc.ready().await.map_err(|error| {
        ClientError::from_call(Status::unavailable(format!("service was not ready: {error}")))
    })?;
    let from_call = ClientError::from_call;
    match (method.is_client_streaming(), method.is_server_streaming()) {
        (false, false) => {
            let request = described(one(requests), timeout, &method);
            let response = grpc.unary(request, path, codec).await.map_err(from_call)?;
            print(response.get_ref(), output)
        }
        (false, true) => {
            let request = described(one(requests), timeout, &method);
            let responses = grpc.server_streaming(request, path, codec).await.map_err(from_call)?;
            print_stream(responses.into_inner(), output).await
        }
        (true, false) => {
            let request = described(futures::stream::iter(requests), timeout, &method);
            let response = grpc.client_streaming(request, path, codec).await.map_err(from_call)?;
            print(response.get_ref(), output)
        }
        (true, true) => {
            let request = described(futures::stream::iter(requests), timeout, &method);
            let responses = grpc.streaming(request, path, codec).await.map_err(from_call)?;
            print_stream(responses.into_inner(), output).await
        }
    }
}

/// A request for `method` with the deadline, carrying the method's
/// descriptor: the Connect protocol needs its kind and types, which only the
/// schema knows.
fn described<T>(message: T, timeout: Option<Duration>, method: &MethodDescriptor) -> tonic::Request<T> {
    let mut request = with_deadline(message, timeout);
    request.extensions_mut().insert(method.clone());
    request
}

/// The one request of a unary or server-streaming call.
fn one(mut requests: Vec<DynamicMessage>) -> DynamicMessage {
    requests.pop().expect("parse_requests gives one request for a single-request method")
}

/// The requests in `text`: one JSON object for a method taking one request,
/// one object per (non-blank) line for a request stream.
fn parse_requests(method: &MethodDescriptor, text: &str) -> Result<Vec<DynamicMessage>, ClientError> {
    let input = method.input();
    if !method.is_client_streaming() {
        return Ok(vec![parse_json(&input, text, None)?]);
    }
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| parse_json(&input, line, Some(i + 1)))
        .collect()
}

/// One `message` from its proto3 JSON; `line` says where it was, in a stream.
pub(crate) fn parse_json(
    message: &MessageDescriptor,
    text: &str,
    line: Option<usize>,
) -> Result<DynamicMessage, ClientError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    DynamicMessage::deserialize(message.clone(), &mut deserializer)
        .and_then(|request| deserializer.end().map(|()| request))
        .map_err(|error| {
            let at = line.map(|line| format!(" (line {line})")).unwrap_or_default();
            ClientError::Other(format!("invalid JSON for {}{at}: {error}", message.full_name()))
        })
}

async fn print_stream(mut responses: Streaming<DynamicMessage>, output: &Output) -> Result<(), ClientError> {
    while let Some(response) = responses.next().await {
        print(&response.map_err(ClientError::from_call)?, output)?;
    }
    Ok(())
}

/// Prints `message` as one line of proto3 JSON.
fn print(message: &DynamicMessage, output: &Output) -> Result<(), ClientError> {
    let mut json = Vec::new();
    message
        .serialize_with_options(&mut serde_json::Serializer::new(&mut json), &SerializeOptions::new())
        .map_err(|error| ClientError::Other(format!("cannot print the response as JSON: {error}")))?;
    output.line(String::from_utf8_lossy(&json));
    Ok(())
}

/// Encodes [`DynamicMessage`]s and decodes them as the method's output type.
struct DynamicCodec(MessageDescriptor);

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        DynamicDecoder(self.0.clone())
    }
}

struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        item.encode(dst).map_err(|error| Status::internal(format!("cannot encode the request: {error}")))
    }
}

struct DynamicDecoder(MessageDescriptor);

impl Decoder for DynamicDecoder {
    type Item = DynamicMessage;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        DynamicMessage::decode(self.0.clone(), src)
            .map(Some)
            .map_err(|error| Status::internal(format!("cannot decode the response: {error}")))
    }
}
