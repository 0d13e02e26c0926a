//! The four `ConnectService` calls, printing each response as
//! `Response from server: {response_data}` like the original clients.

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use connect_proto::{RequestMessage, ResponseMessage};
use futures::{Stream, StreamExt};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    time::Instant,
};
use tonic::{Response, Status, Streaming};

use crate::{
    call::{Client, request, retry::RetryPolicy, with_deadline},
    error::ClientError,
    output::Output,
};

/// Calls `UnaryRPC` once (retried under `policy`).
pub async fn unary(
    client: &mut Client,
    timeout: Option<Duration>,
    policy: &RetryPolicy,
    data: String,
    output: &Output,
) -> Result<(), ClientError> {
    let response = retried_unary(client, timeout, policy, &data).await.map_err(ClientError::from_call)?;
    output.response(&response.get_ref().response_data);
    Ok(())
}

/// One `UnaryRPC` with `data`, retried under `policy`, within `timeout` of now.
pub(super) async fn retried_unary(
    client: &Client,
    timeout: Option<Duration>,
    policy: &RetryPolicy,
    data: &str,
) -> Result<Response<ResponseMessage>, Status> {
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    policy
        .run(deadline, |left| {
            let mut client = client.clone();
            let call = with_deadline(request(data.to_owned()), left);
            async move { client.unary_rpc(call).await }
        })
        .await
}

/// Calls `ServerStreamRPC` and prints every response as it arrives; the call
/// is retried under `policy` until its first response, never after.
pub async fn server_stream(
    client: &mut Client,
    timeout: Option<Duration>,
    policy: &RetryPolicy,
    message: RequestMessage,
    output: &Output,
) -> Result<(), ClientError> {
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    let (first, rest) = policy
        .run(deadline, |left| {
            let mut client = client.clone();
            let call = with_deadline(message.clone(), left);
            async move {
                let mut responses = client.server_stream_rpc(call).await?.into_inner();
                let first = responses.message().await?;
                Ok((first, responses))
            }
        })
        .await
        .map_err(ClientError::from_call)?;
    match first {
        Some(first) => {
            output.response(&first.response_data);
            print_stream(rest, output).await
        }
        None => Ok(()),
    }
}

/// Calls `ClientStreamRPC` with `data` (stdin's lines when empty) and prints the one response.
pub async fn client_stream(
    client: &mut Client,
    timeout: Option<Duration>,
    data: Vec<String>,
    output: &Output,
) -> Result<(), ClientError> {
    if !data.is_empty() {
        let requests = futures::stream::iter(data.into_iter().map(request));
        return client_stream_of(client, timeout, requests, output).await;
    }
    let (requests, unread) = stdin_requests();
    client_stream_of(client, timeout, requests, output).await.and_then(|()| unread.check())
}

async fn client_stream_of(
    client: &mut Client,
    timeout: Option<Duration>,
    requests: impl Stream<Item = RequestMessage> + Send + 'static,
    output: &Output,
) -> Result<(), ClientError> {
    let response =
        client.client_stream_rpc(with_deadline(requests, timeout)).await.map_err(ClientError::from_call)?;
    output.response(&response.get_ref().response_data);
    Ok(())
}

/// Calls `BidiStreamRPC` with stdin's lines, printing each reply as it arrives.
pub async fn bidi(
    client: &mut Client,
    timeout: Option<Duration>,
    output: &Output,
) -> Result<(), ClientError> {
    let (requests, unread) = stdin_requests();
    let response =
        client.bidi_stream_rpc(with_deadline(requests, timeout)).await.map_err(ClientError::from_call)?;
    print_stream(response.into_inner(), output).await.and_then(|()| unread.check())
}

async fn print_stream(mut responses: Streaming<ResponseMessage>, output: &Output) -> Result<(), ClientError> {
    while let Some(response) = responses.message().await.map_err(ClientError::from_call)? {
        output.response(&response.response_data);
    }
    Ok(())
}

/// One request per line of stdin, ending at end of input; the second value
/// reports whether stdin failed (e.g. a line that is not UTF-8) instead.
fn stdin_requests() -> (impl Stream<Item = RequestMessage> + Send + 'static, StdinFailure) {
    let failure = StdinFailure::default();
    let lines = BufReader::new(tokio::io::stdin()).lines();
    let requests = futures::stream::unfold((lines, failure.clone()), |(mut lines, failure)| async move {
        match lines.next_line().await {
            Ok(Some(line)) => Some((request(line), (lines, failure))),
            Ok(None) => None,
            Err(error) => {
                // The stream can only end; the command reports the failure once the call is done.
                let _ = failure.0.set(error.to_string());
                None
            }
        }
    })
    .fuse();
    (requests, failure)
}

/// Set when reading stdin failed, which cut the request stream short: the
/// call may have succeeded, but on partial input, so the command must not.
#[derive(Debug, Clone, Default)]
struct StdinFailure(Arc<OnceLock<String>>);

impl StdinFailure {
    fn check(&self) -> Result<(), ClientError> {
        match self.0.get() {
            Some(error) => {
                Err(ClientError::Other(format!("cannot read stdin ({error}): the requests were cut short")))
            }
            None => Ok(()),
        }
    }
}
