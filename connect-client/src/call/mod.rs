//! What one call carries besides its message, and how it ends: request
//! metadata (`-H`, the bearer token), compression, the deadline, retries.

pub mod metadata;
pub mod retry;

use std::{future::Future, time::Duration};

use connect_proto::{ConnectServiceClient, RequestMessage, headers::GRPC_TIMEOUT, timeout};
use http::{Extensions, HeaderMap};
use tonic::{Request, codec::CompressionEncoding, metadata::MetadataMap};

use crate::{
    channel::Transport,
    error::{ClientError, client_deadline_exceeded},
    output::Output,
};
use metadata::{CallMetadata, Header, bearer};

/// How long past its deadline the client waits for the server's own status
/// before ending the call itself (a backstop for an unresponsive server).
pub(crate) const DEADLINE_SLACK: Duration = Duration::from_secs(1);

/// A channel that sends the configured credentials and `-H` headers on every
/// call, and prints the response metadata with `-v`: what every command calls on.
pub type CallChannel = CallMetadata<Transport>;

/// A `ConnectService` client on a [`CallChannel`].
pub type Client = ConnectServiceClient<CallChannel>;

/// Everything a call carries besides its message.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// `-H` request metadata.
    pub headers: Vec<Header>,
    /// `-v`: print response headers and trailers to stderr.
    pub verbose: bool,
    /// Bearer token.
    pub token: Option<String>,
    /// Request compression (responses are then asked for compressed the same way).
    pub compress: Option<CompressionEncoding>,
    /// Where `-v` prints.
    pub output: Output,
}

/// `channel` (a tonic `Channel`, or any [`Transport`]) with the token,
/// headers and `-v` of `options`.
pub fn call_channel(
    channel: impl Into<Transport>,
    options: &CallOptions,
) -> Result<CallChannel, ClientError> {
    let authorization = options.token.as_deref().map(bearer).transpose()?;
    let verbose = options.verbose.then(|| options.output.clone());
    Ok(CallMetadata::new(channel.into(), options.headers.clone(), authorization, verbose))
}

/// A client on `channel` (a tonic `Channel`, or any [`Transport`]) making calls as `options` says.
pub fn client(channel: impl Into<Transport>, options: &CallOptions) -> Result<Client, ClientError> {
    let client = ConnectServiceClient::new(call_channel(channel, options)?);
    // Only ask for compressed responses with --compress: for small messages
    // compression costs more CPU than it saves bytes.
    Ok(match options.compress {
        None => client,
        Some(encoding) => client.send_compressed(encoding).accept_compressed(encoding),
    })
}

/// A request carrying only `request_data`.
pub(crate) fn request(data: String) -> RequestMessage {
    RequestMessage { request_data: data, ..RequestMessage::default() }
}

/// Wraps `message` in a request with the optional deadline set as `grpc-timeout`.
///
/// Written with connect-proto's encoder rather than tonic's `set_timeout`
/// (which rounds down), so every deadline the project sends follows one rule;
/// tonic's channel still reads the header to run its own timer.
pub(crate) fn with_deadline<T>(message: T, timeout: Option<Duration>) -> Request<T> {
    let mut headers = HeaderMap::new();
    if let Some(timeout) = timeout {
        headers.insert(GRPC_TIMEOUT, timeout::encode(timeout));
    }
    Request::from_parts(MetadataMap::from_headers(headers), Extensions::default(), message)
}

/// Runs `call`, ending it with DEADLINE_EXCEEDED if it outlasts `timeout` by
/// more than [`DEADLINE_SLACK`].
pub(crate) async fn with_backstop(
    timeout: Option<Duration>,
    call: impl Future<Output = Result<(), ClientError>>,
) -> Result<(), ClientError> {
    match timeout {
        Some(timeout) => tokio::time::timeout(timeout + DEADLINE_SLACK, call)
            .await
            .unwrap_or_else(|_| Err(ClientError::Rpc(Box::new(client_deadline_exceeded())))),
        None => call.await,
    }
}
