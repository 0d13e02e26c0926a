//! The client's commands: one function per RPC kind, printing each response
//! as `Response from server: {response_data}` like the original clients.

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use connect_proto::RequestMessage;
use futures::{Stream, StreamExt};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    time::Instant,
};
use tonic::{Request, Status, Streaming};

use crate::{
    balance,
    cli::{Cli, Command},
    connection::{self, CallOptions, Client},
    exit::ClientError,
    probe, repeat,
    retry::RetryPolicy,
};

/// How long past its deadline the client waits for the server's own status
/// before ending the call itself (a backstop for an unresponsive server).
const DEADLINE_SLACK: Duration = Duration::from_secs(1);

/// Runs the command described by `cli`, printing responses to stdout.
pub async fn run(cli: Cli) -> Result<(), ClientError> {
    // The benchmark opens its own connections and sets each call's deadline itself.
    if let Command::Bench(options) = cli.command {
        return crate::bench::run(&cli.addr, cli.connect_timeout, cli.timeout, cli.token.as_deref(), options)
            .await;
    }
    let connected = balance::connect(&cli).await?;
    let policy = RetryPolicy::new(&cli.retry, connected.reprobe.clone())
        .wait_for_ready(cli.balance.wait_for_ready.then(|| cli.timeout.unwrap_or(cli.connect_timeout)));
    let channel = connected.channel;
    let options = CallOptions::from(&cli);
    let mut client = connection::client(channel.clone(), &options)?;
    if let Command::Unary { data } = &cli.command
        && cli.repeat.active()
    {
        // Each repeated call has its own deadline, so the whole run is not bounded by one.
        return repeat::unary(&client, cli.timeout, &policy, data, &cli.repeat).await.map(drop);
    }
    let call = async {
        match cli.command {
            Command::Health { service } => {
                probe::health(connection::call_channel(channel, &options)?, service, cli.timeout).await
            }
            Command::List => probe::list(connection::call_channel(channel, &options)?, cli.timeout).await,
            Command::Unary { data } => unary(&mut client, cli.timeout, &policy, data).await,
            Command::ServerStream { data, count, interval_ms } => {
                let message = RequestMessage { request_data: data, count, interval_ms };
                server_stream(&mut client, cli.timeout, &policy, message).await
            }
            Command::ClientStream { data } if data.is_empty() => {
                let (requests, unread) = stdin_requests();
                client_stream(&mut client, cli.timeout, requests).await.and_then(|()| unread.check())
            }
            Command::ClientStream { data } => {
                let requests = futures::stream::iter(data.into_iter().map(request));
                client_stream(&mut client, cli.timeout, requests).await
            }
            Command::Bidi => {
                let (requests, unread) = stdin_requests();
                bidi(&mut client, cli.timeout, requests).await.and_then(|()| unread.check())
            }
            Command::Bench(_) => unreachable!("handled above"),
        }
    };
    match cli.timeout {
        Some(timeout) => tokio::time::timeout(timeout + DEADLINE_SLACK, call)
            .await
            .unwrap_or_else(|_| Err(Status::deadline_exceeded("deadline exceeded (client side)").into())),
        None => call.await,
    }
}

/// A request carrying only `request_data`.
pub fn request(data: String) -> RequestMessage {
    RequestMessage { request_data: data, ..RequestMessage::default() }
}

/// Wraps `message` in a request with the optional deadline set as `grpc-timeout`.
pub fn with_deadline<T>(message: T, timeout: Option<Duration>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(timeout) = timeout {
        request.set_timeout(timeout);
    }
    request
}

fn print_response(data: &str) {
    println!("Response from server: {data}");
}

/// Calls `UnaryRPC` once (retried under `policy`).
pub async fn unary(
    client: &mut Client,
    timeout: Option<Duration>,
    policy: &RetryPolicy,
    data: String,
) -> Result<(), ClientError> {
    let deadline = timeout.map(|timeout| Instant::now() + timeout);
    let response = policy
        .run(deadline, |left| {
            let mut client = client.clone();
            let call = with_deadline(request(data.clone()), left);
            async move { client.unary_rpc(call).await }
        })
        .await?;
    print_response(&response.get_ref().response_data);
    Ok(())
}

/// Calls `ServerStreamRPC` and prints every response as it arrives; the call
/// is retried under `policy` until its first response, never after.
pub async fn server_stream(
    client: &mut Client,
    timeout: Option<Duration>,
    policy: &RetryPolicy,
    message: RequestMessage,
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
        .await?;
    match first {
        Some(first) => {
            print_response(&first.response_data);
            print_stream(rest).await
        }
        None => Ok(()),
    }
}

/// Calls `ClientStreamRPC` with `requests` and prints the one response.
pub async fn client_stream(
    client: &mut Client,
    timeout: Option<Duration>,
    requests: impl Stream<Item = RequestMessage> + Send + 'static,
) -> Result<(), ClientError> {
    let response = client.client_stream_rpc(with_deadline(requests, timeout)).await?;
    print_response(&response.get_ref().response_data);
    Ok(())
}

/// Calls `BidiStreamRPC` with `requests`, printing each reply as it arrives.
pub async fn bidi(
    client: &mut Client,
    timeout: Option<Duration>,
    requests: impl Stream<Item = RequestMessage> + Send + 'static,
) -> Result<(), ClientError> {
    let response = client.bidi_stream_rpc(with_deadline(requests, timeout)).await?;
    print_stream(response.into_inner()).await
}

async fn print_stream(mut responses: Streaming<connect_proto::ResponseMessage>) -> Result<(), ClientError> {
    while let Some(response) = responses.message().await? {
        print_response(&response.response_data);
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
