//! The interop test cases, as a client on connect-client's channel and call
//! code: [`connect`] opens the channel, [`run`] runs one case by its
//! interop name. Each case checks exact sizes, codes, messages and metadata,
//! and fails with what it saw.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context as _, bail, ensure};
use connect_client::{
    ClientError,
    call::{CallChannel, CallOptions, call_channel},
    channel::{Options, connect_addrs},
};
use futures::{future::BoxFuture, stream};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{
    Code, Request, Status,
    codec::CompressionEncoding,
    metadata::{AsciiMetadataValue, BinaryMetadataValue, MetadataMap},
    transport::{Certificate, ClientTlsConfig, Endpoint},
};

use crate::{
    ECHO_INITIAL, ECHO_TRAILING,
    pb::{
        BoolValue, EchoStatus, Empty, PayloadType, ResponseParameters, SimpleRequest,
        StreamingInputCallRequest, StreamingOutputCallRequest, StreamingOutputCallResponse,
        test_service_client::TestServiceClient, unimplemented_service_client::UnimplementedServiceClient,
    },
    wire::{CompressedFlags, ScannedBody, scan_response},
    zeros,
};
use tower::Service;

/// A `grpc.testing.TestService` client on connect-client's call channel.
pub type Client = TestServiceClient<CallChannel>;

/// Every case [`run`] knows, in the order of the interop descriptions.
pub const CASES: &[&str] = &[
    "empty_unary",
    "large_unary",
    "client_compressed_unary",
    "server_compressed_unary",
    "client_streaming",
    "server_streaming",
    "ping_pong",
    "empty_stream",
    "cancel_after_begin",
    "cancel_after_first_response",
    "timeout_on_sleeping_server",
    "custom_metadata",
    "status_code_and_message",
    "special_status_message",
    "unimplemented_method",
    "unimplemented_service",
];

/// Where the server is and how to reach it (the interop client's flags).
#[derive(Debug, Clone)]
pub struct Target {
    /// Host name or address to connect to.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// TLS, trusting `ca` (or the system's roots), checking the certificate for `host_override` (or `host`).
    pub tls: Option<Tls>,
}

/// How the client checks the server's certificate.
#[derive(Debug, Clone)]
pub struct Tls {
    /// The CA certificate (PEM) to trust instead of the system's roots.
    pub ca: Option<PathBuf>,
    /// The name the certificate must be for, when not the host's.
    pub host_override: Option<String>,
}

/// Most time the connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A channel to `target`: connect-client's (`connect_addrs`), or, when TLS
/// checks the certificate for another name than the host's (which
/// `connect_addrs` does not offer), a tonic endpoint with that name.
pub async fn connect(target: &Target) -> anyhow::Result<CallChannel> {
    let Some(tls) = &target.tls else {
        let options = options(None);
        let balanced = connect_addrs(&[format!("http://{}:{}", target.host, target.port)], &options).await?;
        return Ok(call_channel(balanced.channel, &CallOptions::default())?);
    };
    let mut config = ClientTlsConfig::new();
    config = match &tls.ca {
        Some(ca) => {
            let pem = std::fs::read(ca).with_context(|| format!("cannot read the CA {}", ca.display()))?;
            config.ca_certificate(Certificate::from_pem(pem))
        }
        None => config.with_native_roots(),
    };
    let url = format!("https://{}:{}", target.host, target.port);
    let channel = match &tls.host_override {
        None => connect_addrs(&[url], &options(Some(config))).await?.channel,
        Some(name) => Endpoint::from_shared(url)?
            .tls_config(config.domain_name(name.clone()))?
            .connect_timeout(CONNECT_TIMEOUT)
            .connect()
            .await
            .with_context(|| format!("cannot connect to {}:{}", target.host, target.port))?,
    };
    Ok(call_channel(channel, &CallOptions::default())?)
}

fn options(tls: Option<ClientTlsConfig>) -> Options {
    Options {
        tls,
        connect_timeout: CONNECT_TIMEOUT,
        resolve_interval: Duration::ZERO,
        wait_until: None,
        failed_attempts: watch::Sender::new(0),
        keepalive: None,
    }
}

/// Runs the case named `case` on `channel`.
pub async fn run(case: &str, channel: CallChannel) -> anyhow::Result<()> {
    let client = TestServiceClient::new(channel.clone());
    match case {
        "empty_unary" => empty_unary(client).await,
        "large_unary" => large_unary(client).await,
        "client_compressed_unary" => client_compressed_unary(client).await,
        "server_compressed_unary" => server_compressed_unary(channel).await,
        "client_streaming" => client_streaming(client).await,
        "server_streaming" => server_streaming(client).await,
        "ping_pong" => ping_pong(client).await,
        "empty_stream" => empty_stream(client).await,
        "cancel_after_begin" => cancel_after_begin(client).await,
        "cancel_after_first_response" => cancel_after_first_response(client).await,
        "timeout_on_sleeping_server" => timeout_on_sleeping_server(client).await,
        "custom_metadata" => custom_metadata(client).await,
        "status_code_and_message" => status_code_and_message(client).await,
        "special_status_message" => special_status_message(client).await,
        "unimplemented_method" => {
            let status = client.clone().unimplemented_call(Empty {}).await.expect_err("must fail");
            expect_code(&status, Code::Unimplemented)
        }
        "unimplemented_service" => {
            let status = UnimplementedServiceClient::new(channel).unimplemented_call(Empty {}).await;
            expect_code(&status.expect_err("must fail"), Code::Unimplemented)
        }
        other => bail!("unknown test case {other:?} (known: {})", CASES.join(", ")),
    }
}

fn expect_code(status: &Status, code: Code) -> anyhow::Result<()> {
    ensure!(status.code() == code, "expected {code:?}, got {:?}: {:?}", status.code(), status.message());
    Ok(())
}

/// The error of `result`, or a failure saying it succeeded.
fn expect_err<T>(result: Result<T, Status>, what: &str) -> anyhow::Result<Status> {
    match result {
        Ok(_) => bail!("{what}: expected an error status, the call succeeded"),
        Err(status) => Ok(status),
    }
}

fn large_request() -> SimpleRequest {
    SimpleRequest {
        response_type: PayloadType::Compressable.into(),
        response_size: 314_159,
        payload: Some(zeros(271_828)),
        ..Default::default()
    }
}

fn check_payload(payload: Option<&crate::pb::Payload>, size: usize, what: &str) -> anyhow::Result<()> {
    let payload = payload.with_context(|| format!("{what}: no payload"))?;
    ensure!(
        payload.r#type == i32::from(PayloadType::Compressable),
        "{what}: payload type {}",
        payload.r#type
    );
    ensure!(payload.body.len() == size, "{what}: payload of {} bytes, expected {size}", payload.body.len());
    ensure!(payload.body.iter().all(|&byte| byte == 0), "{what}: payload is not all zeros");
    Ok(())
}

fn streaming_request(request_size: usize, response_size: i32) -> StreamingOutputCallRequest {
    StreamingOutputCallRequest {
        response_type: PayloadType::Compressable.into(),
        response_parameters: vec![ResponseParameters { size: response_size, ..Default::default() }],
        payload: Some(zeros(request_size)),
        ..Default::default()
    }
}

async fn empty_unary(mut client: Client) -> anyhow::Result<()> {
    let response = client.empty_call(Empty {}).await?.into_inner();
    ensure!(response == Empty {}, "expected an empty response");
    Ok(())
}

async fn large_unary(mut client: Client) -> anyhow::Result<()> {
    let response = client.unary_call(large_request()).await?.into_inner();
    check_payload(response.payload.as_ref(), 314_159, "large_unary")
}

async fn client_compressed_unary(client: Client) -> anyhow::Result<()> {
    let expecting = |value| SimpleRequest { expect_compressed: Some(BoolValue { value }), ..large_request() };
    // The probe: uncompressed, but expected compressed.
    let probe = expect_err(client.clone().unary_call(expecting(true)).await, "probe")?;
    expect_code(&probe, Code::InvalidArgument)?;
    let mut gzip = client.clone().send_compressed(CompressionEncoding::Gzip);
    let response = gzip.unary_call(expecting(true)).await?.into_inner();
    check_payload(response.payload.as_ref(), 314_159, "compressed request")?;
    let response = client.clone().unary_call(expecting(false)).await?.into_inner();
    check_payload(response.payload.as_ref(), 314_159, "uncompressed request")
}

/// Asks for a compressed and an uncompressed response, and checks the
/// compressed flag of each (which tonic's client does not show: [`ScanResponses`]).
async fn server_compressed_unary(channel: CallChannel) -> anyhow::Result<()> {
    let mut client =
        TestServiceClient::new(ScanResponses(channel)).accept_compressed(CompressionEncoding::Gzip);
    for value in [true, false] {
        let what = format!("response_compressed {value}");
        let request = SimpleRequest { response_compressed: Some(BoolValue { value }), ..large_request() };
        let response = client.unary_call(request).await?;
        let compressed = response.extensions().get::<CompressedFlags>().and_then(CompressedFlags::next);
        ensure!(compressed == Some(value), "{what}: the response's compressed flag is {compressed:?}");
        check_payload(response.get_ref().payload.as_ref(), 314_159, &what)?;
    }
    Ok(())
}

/// A channel whose responses carry the compressed flags of their messages
/// (a [`CompressedFlags`] extension).
#[derive(Clone)]
struct ScanResponses<S>(S);

impl<S, B> Service<http::Request<tonic::body::Body>> for ScanResponses<S>
where
    S: Service<http::Request<tonic::body::Body>, Response = http::Response<B>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<ScannedBody<B>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let call = self.0.call(request);
        Box::pin(async move { call.await.map(scan_response) })
    }
}

const INPUT_SIZES: [usize; 4] = [27_182, 8, 1_828, 45_904];

fn input_requests() -> Vec<StreamingInputCallRequest> {
    INPUT_SIZES
        .iter()
        .map(|&size| StreamingInputCallRequest { payload: Some(zeros(size)), ..Default::default() })
        .collect()
}

async fn client_streaming(mut client: Client) -> anyhow::Result<()> {
    let response = client.streaming_input_call(stream::iter(input_requests())).await?.into_inner();
    ensure!(
        response.aggregated_payload_size == 74_922,
        "aggregated size {}",
        response.aggregated_payload_size
    );
    Ok(())
}

const OUTPUT_SIZES: [i32; 4] = [31_415, 9, 2_653, 58_979];

async fn server_streaming(mut client: Client) -> anyhow::Result<()> {
    let request = StreamingOutputCallRequest {
        response_type: PayloadType::Compressable.into(),
        response_parameters: OUTPUT_SIZES
            .iter()
            .map(|&size| ResponseParameters { size, ..Default::default() })
            .collect(),
        ..Default::default()
    };
    let mut responses = client.streaming_output_call(request).await?.into_inner();
    let mut count = 0;
    while let Some(response) = responses.message().await? {
        let expected =
            OUTPUT_SIZES.get(count).with_context(|| format!("more than {} responses", OUTPUT_SIZES.len()))?;
        check_payload(response.payload.as_ref(), size(*expected), &format!("response {count}"))?;
        count += 1;
    }
    ensure!(count == OUTPUT_SIZES.len(), "{count} responses, expected {}", OUTPUT_SIZES.len());
    Ok(())
}

fn size(size: i32) -> usize {
    usize::try_from(size).unwrap_or_default()
}

/// A request stream the case writes to as it goes.
fn request_stream() -> (mpsc::Sender<StreamingOutputCallRequest>, ReceiverStream<StreamingOutputCallRequest>)
{
    let (tx, rx) = mpsc::channel(1);
    (tx, ReceiverStream::new(rx))
}

/// The next response of `responses`, which must be there and be `size` bytes.
async fn next_response(
    responses: &mut tonic::Streaming<StreamingOutputCallResponse>,
    size: i32,
    what: &str,
) -> anyhow::Result<()> {
    let response = responses.message().await?.with_context(|| format!("{what}: the stream ended"))?;
    check_payload(response.payload.as_ref(), self::size(size), what)
}

async fn ping_pong(mut client: Client) -> anyhow::Result<()> {
    let (tx, requests) = request_stream();
    let mut sizes = INPUT_SIZES.iter().zip(OUTPUT_SIZES);
    let (&first_in, first_out) = sizes.next().context("sizes")?;
    tx.send(streaming_request(first_in, first_out)).await?;
    let mut responses = client.full_duplex_call(requests).await?.into_inner();
    next_response(&mut responses, first_out, "ping 0").await?;
    for (index, (&request_size, response_size)) in sizes.enumerate() {
        tx.send(streaming_request(request_size, response_size)).await?;
        next_response(&mut responses, response_size, &format!("ping {}", index + 1)).await?;
    }
    drop(tx);
    ensure!(responses.message().await?.is_none(), "a response after the last ping");
    Ok(())
}

async fn empty_stream(mut client: Client) -> anyhow::Result<()> {
    let mut responses = client.full_duplex_call(stream::empty()).await?.into_inner();
    ensure!(responses.message().await?.is_none(), "a response to no request");
    Ok(())
}

/// Cancels a client stream before any message: tonic cancels a call by
/// dropping it (the server gets `RST_STREAM(CANCEL)`), so the checks are
/// that the call had not ended by then and that the connection still serves.
async fn cancel_after_begin(client: Client) -> anyhow::Result<()> {
    let mut call_client = client.clone();
    let call = tokio::spawn(async move { call_client.streaming_input_call(stream::pending()).await });
    // Long enough for the request headers to leave; the call cannot end on its own.
    tokio::time::sleep(Duration::from_millis(200)).await;
    ensure!(!call.is_finished(), "the call ended before it was cancelled: {:?}", call.await);
    call.abort();
    ensure!(call.await.is_err_and(|error| error.is_cancelled()), "the call was not cancelled");
    empty_unary(client).await.context("a call after the cancelled one")
}

/// Cancels a bidi stream after its first response (see [`cancel_after_begin`]).
async fn cancel_after_first_response(mut client: Client) -> anyhow::Result<()> {
    let (tx, requests) = request_stream();
    tx.send(streaming_request(27_182, 31_415)).await?;
    let mut responses = client.full_duplex_call(requests).await?.into_inner();
    next_response(&mut responses, 31_415, "first response").await?;
    drop(responses);
    drop(tx);
    empty_unary(client).await.context("a call after the cancelled one")
}

async fn timeout_on_sleeping_server(mut client: Client) -> anyhow::Result<()> {
    let (tx, requests) = request_stream();
    tx.send(streaming_request(27_182, 0)).await?;
    let mut request = Request::new(requests);
    request.set_timeout(Duration::from_millis(1));
    // Once the response headers are in, the deadline is the server's to
    // enforce (tonic's client times the headers only); a server that never
    // answers fails the case.
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        let mut responses = client.full_duplex_call(request).await?.into_inner();
        while responses.message().await?.is_some() {}
        Ok::<_, Status>(())
    })
    .await
    .context("no status 10 s after a 1 ms deadline")?;
    drop(tx);
    let status = expect_err(outcome, "full duplex past its deadline")?;
    // tonic's client calls its own deadline's expiry CANCELLED "Timeout expired"
    // (when it fires before the response headers arrive); connect-client reads that as
    // DEADLINE_EXCEEDED, as gRPC does.
    match ClientError::from_call(status) {
        ClientError::Rpc(status) => expect_code(&status, Code::DeadlineExceeded),
        other => bail!("expected DeadlineExceeded, got {other}"),
    }
}

async fn custom_metadata(mut client: Client) -> anyhow::Result<()> {
    let initial = AsciiMetadataValue::from_static("test_initial_metadata_value");
    let trailing = BinaryMetadataValue::from_bytes(&[0xab, 0xab, 0xab]);
    fn with_metadata<T>(
        message: T,
        initial: &AsciiMetadataValue,
        trailing: &BinaryMetadataValue,
    ) -> Request<T> {
        let mut request = Request::new(message);
        request.metadata_mut().insert(ECHO_INITIAL, initial.clone());
        request.metadata_mut().insert_bin(ECHO_TRAILING, trailing.clone());
        request
    }
    let check = |metadata: &MetadataMap, trailers: &MetadataMap, what: &str| {
        ensure!(
            metadata.get(ECHO_INITIAL) == Some(&initial),
            "{what}: initial metadata {:?}",
            metadata.get(ECHO_INITIAL)
        );
        let echoed = trailers.get_bin(ECHO_TRAILING);
        ensure!(echoed == Some(&trailing), "{what}: trailing metadata {echoed:?}");
        Ok(())
    };
    // tonic gives a unary call's headers and trailers as one map.
    let response = client.unary_call(with_metadata(large_request(), &initial, &trailing)).await?;
    check(response.metadata(), response.metadata(), "unary")?;
    check_payload(response.get_ref().payload.as_ref(), 314_159, "unary")?;

    let requests = stream::iter([streaming_request(271_828, 314_159)]);
    let response = client.full_duplex_call(with_metadata(requests, &initial, &trailing)).await?;
    let headers = response.metadata().clone();
    let mut responses = response.into_inner();
    next_response(&mut responses, 314_159, "full duplex").await?;
    ensure!(responses.message().await?.is_none(), "full duplex: more than one response");
    let trailers = responses.trailers().await?.context("full duplex: no trailers")?;
    check(&headers, &trailers, "full duplex")
}

async fn expect_echo(mut client: Client, code: i32, message: &str) -> anyhow::Result<()> {
    let echo = EchoStatus { code, message: message.to_owned() };
    let request = SimpleRequest { response_status: Some(echo.clone()), ..large_request() };
    let status = expect_err(client.unary_call(request).await, "unary")?;
    ensure!(
        (status.code(), status.message()) == (Code::from_i32(code), message),
        "unary: got {:?} {:?}",
        status.code(),
        status.message()
    );
    let request = StreamingOutputCallRequest { response_status: Some(echo), ..streaming_request(1, 1) };
    let outcome = async {
        let mut responses = client.full_duplex_call(stream::iter([request])).await?.into_inner();
        while responses.message().await?.is_some() {}
        Ok::<_, Status>(())
    };
    let status = expect_err(outcome.await, "full duplex")?;
    ensure!(
        (status.code(), status.message()) == (Code::from_i32(code), message),
        "full duplex: got {:?} {:?}",
        status.code(),
        status.message()
    );
    Ok(())
}

async fn status_code_and_message(client: Client) -> anyhow::Result<()> {
    expect_echo(client, 2, "test status message").await
}

async fn special_status_message(client: Client) -> anyhow::Result<()> {
    expect_echo(client, 2, "\t\ntest with whitespace\r\nand Unicode BMP \u{263a} and non-BMP \u{1f608}\t\n")
        .await
}
