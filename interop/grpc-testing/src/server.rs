//! `grpc.testing.TestService` and `grpc.testing.UnimplementedService`, as
//! gRPC's interop test descriptions ask, and the routes that add them to
//! connect-server ([`add_to`]).

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use connect_proto::{
    headers::{GRPC_ACCEPT_ENCODING, GRPC_TIMEOUT},
    timeout,
};
use connect_server::Builder;
use futures::{Stream, future::BoxFuture};
use http::{Request, Response};
use tokio::{sync::mpsc, time::Instant};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{
    Code, Status, Streaming, body::Body, codec::CompressionEncoding, codec::SingleMessageCompressionOverride,
    server::NamedService,
};
use tower::Service;

use crate::{
    pb::{
        self, BoolValue, EchoStatus, Empty, SimpleRequest, SimpleResponse, StreamingInputCallRequest,
        StreamingInputCallResponse, StreamingOutputCallRequest, StreamingOutputCallResponse,
        test_service_server::{TestService, TestServiceServer},
        unimplemented_service_server::{UnimplementedService, UnimplementedServiceServer},
    },
    wire::{CompressedFlags, Echo, scan_request},
    zeros,
};

/// Responses a streaming handler may have queued before the client reads them.
const QUEUE: usize = 16;

/// `builder` with `grpc.testing.TestService` (compressed requests accepted,
/// responses compressed for clients that accept it, messages within the
/// server's `--max-recv-message-size` and `--max-send-message-size`),
/// `grpc.testing.UnimplementedService` and their descriptors: what
/// `interop-server` serves.
pub fn add_to(builder: Builder) -> Result<Builder, connect_server::Error> {
    let limits = &builder.config().limits;
    let test = TestServiceServer::new(TestServer)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .send_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Zstd)
        .max_decoding_message_size(limits.max_recv_message_size)
        .max_encoding_message_size(limits.max_send_message_size);
    builder
        .add_service(Wire { inner: test })
        .add_service(UnimplementedServiceServer::new(Unimplemented))
        .file_descriptor_set(crate::FILE_DESCRIPTOR_SET)
}

/// The test service's handlers.
#[derive(Debug, Clone, Copy, Default)]
pub struct TestServer;

/// A payload of `size` zeros; a negative size is the client's mistake.
fn payload(size: i32) -> Result<pb::Payload, Status> {
    let size = usize::try_from(size).map_err(|_| Status::invalid_argument("negative response size"))?;
    Ok(zeros(size))
}

/// The status `echo` asks for, if any (code 0 asks for none).
fn echoed(echo: Option<&EchoStatus>) -> Result<(), Status> {
    match echo {
        Some(echo) if echo.code != 0 => Err(Status::new(Code::from_i32(echo.code), echo.message.clone())),
        _ => Ok(()),
    }
}

/// Checks a request message against its `expect_compressed` (the interop
/// descriptions: a request that should have been compressed and was not, or
/// the other way round, is `INVALID_ARGUMENT`).
fn check_compressed(expect: Option<&BoolValue>, compressed: Option<bool>) -> Result<(), Status> {
    match (expect.map(|expect| expect.value), compressed.unwrap_or(false)) {
        (Some(true), false) => Err(Status::invalid_argument("expected a compressed request")),
        (Some(false), true) => Err(Status::invalid_argument("expected an uncompressed request")),
        _ => Ok(()),
    }
}

/// The compressed flags recorded for `extensions` (an empty record when the
/// request did not come through [`Wire`], as in unit tests).
fn flags(extensions: &http::Extensions) -> CompressedFlags {
    extensions.get::<CompressedFlags>().cloned().unwrap_or_default()
}

/// Sends the responses `request` asks for, each after its `interval_us`;
/// false when the client is gone.
async fn respond(
    request: &StreamingOutputCallRequest,
    tx: &mpsc::Sender<Result<StreamingOutputCallResponse, Status>>,
) -> bool {
    for parameters in &request.response_parameters {
        if parameters.interval_us > 0 {
            tokio::time::sleep(Duration::from_micros(parameters.interval_us.unsigned_abs().into())).await;
        }
        let response =
            payload(parameters.size).map(|payload| StreamingOutputCallResponse { payload: Some(payload) });
        let failed = response.is_err();
        if tx.send(response).await.is_err() || failed {
            return false;
        }
    }
    true
}

/// When the call must end: its `grpc-timeout` from now. (connect-server
/// enforces deadlines in its own handlers, so these handlers do it themselves.)
fn deadline<T>(request: &tonic::Request<T>) -> Option<Instant> {
    let value = request.metadata().get(GRPC_TIMEOUT.as_str())?.to_str().ok()?;
    Some(Instant::now() + timeout::parse(value)?)
}

/// The status of a call whose deadline passed.
fn deadline_exceeded() -> Status {
    Status::deadline_exceeded("deadline exceeded")
}

/// Runs `produce` (which sends the call's responses to `tx`) on its own task,
/// ending the call with `DEADLINE_EXCEEDED` if it runs past `deadline`.
fn spawn_until(
    deadline: Option<Instant>,
    tx: mpsc::Sender<Result<StreamingOutputCallResponse, Status>>,
    produce: impl Future<Output = ()> + Send + 'static,
) {
    tokio::spawn(async move {
        let Some(deadline) = deadline else { return produce.await };
        tokio::select! {
            () = produce => {}
            () = tokio::time::sleep_until(deadline) => {
                let _ = tx.send(Err(deadline_exceeded())).await;
            }
        }
    });
}

/// The stream type of the streaming handlers.
type Responses = Pin<Box<dyn Stream<Item = Result<StreamingOutputCallResponse, Status>> + Send>>;

#[tonic::async_trait]
impl TestService for TestServer {
    async fn empty_call(&self, _request: tonic::Request<Empty>) -> Result<tonic::Response<Empty>, Status> {
        Ok(tonic::Response::new(Empty {}))
    }

    async fn unary_call(
        &self,
        request: tonic::Request<SimpleRequest>,
    ) -> Result<tonic::Response<SimpleResponse>, Status> {
        let compressed = flags(request.extensions()).next();
        let request = request.into_inner();
        check_compressed(request.expect_compressed.as_ref(), compressed)?;
        echoed(request.response_status.as_ref())?;
        let mut response = tonic::Response::new(SimpleResponse {
            payload: Some(payload(request.response_size)?),
            ..Default::default()
        });
        // Compressed only when asked for (server_compressed_unary sends false too).
        if !request.response_compressed.is_some_and(|compressed| compressed.value) {
            response.extensions_mut().insert(SingleMessageCompressionOverride::Disable);
        }
        Ok(response)
    }

    async fn cacheable_unary_call(
        &self,
        request: tonic::Request<SimpleRequest>,
    ) -> Result<tonic::Response<SimpleResponse>, Status> {
        self.unary_call(request).await
    }

    type StreamingOutputCallStream = Responses;

    async fn streaming_output_call(
        &self,
        request: tonic::Request<StreamingOutputCallRequest>,
    ) -> Result<tonic::Response<Self::StreamingOutputCallStream>, Status> {
        let deadline = deadline(&request);
        let request = request.into_inner();
        let (tx, rx) = mpsc::channel(QUEUE);
        spawn_until(deadline, tx.clone(), async move {
            if respond(&request, &tx).await
                && let Err(status) = echoed(request.response_status.as_ref())
            {
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(tonic::Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn streaming_input_call(
        &self,
        request: tonic::Request<Streaming<StreamingInputCallRequest>>,
    ) -> Result<tonic::Response<StreamingInputCallResponse>, Status> {
        let flags = flags(request.extensions());
        let deadline = deadline(&request);
        let mut requests = request.into_inner();
        let read = async {
            let mut size = 0usize;
            while let Some(request) = requests.message().await? {
                check_compressed(request.expect_compressed.as_ref(), flags.next())?;
                size += request.payload.map_or(0, |payload| payload.body.len());
            }
            Ok::<_, Status>(size)
        };
        let size = match deadline {
            Some(deadline) => {
                tokio::time::timeout_at(deadline, read).await.map_err(|_| deadline_exceeded())??
            }
            None => read.await?,
        };
        let aggregated_payload_size =
            i32::try_from(size).map_err(|_| Status::invalid_argument("aggregated payload size over i32"))?;
        Ok(tonic::Response::new(StreamingInputCallResponse { aggregated_payload_size }))
    }

    type FullDuplexCallStream = Responses;

    async fn full_duplex_call(
        &self,
        request: tonic::Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<tonic::Response<Self::FullDuplexCallStream>, Status> {
        let deadline = deadline(&request);
        let mut requests = request.into_inner();
        let (tx, rx) = mpsc::channel(QUEUE);
        spawn_until(deadline, tx.clone(), async move {
            loop {
                let request = match requests.message().await {
                    Ok(Some(request)) => request,
                    Ok(None) => return,
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                };
                if let Err(status) = echoed(request.response_status.as_ref()) {
                    let _ = tx.send(Err(status)).await;
                    return;
                }
                if !respond(&request, &tx).await {
                    return;
                }
            }
        });
        Ok(tonic::Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type HalfDuplexCallStream = Responses;

    async fn half_duplex_call(
        &self,
        request: tonic::Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<tonic::Response<Self::HalfDuplexCallStream>, Status> {
        let deadline = deadline(&request);
        let mut requests = request.into_inner();
        let (tx, rx) = mpsc::channel(QUEUE);
        spawn_until(deadline, tx.clone(), async move {
            // Every request first (until the client half-closes), then every response.
            let mut all = Vec::new();
            loop {
                match requests.message().await {
                    Ok(Some(request)) => all.push(request),
                    Ok(None) => break,
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                }
            }
            for request in &all {
                if let Err(status) = echoed(request.response_status.as_ref()) {
                    let _ = tx.send(Err(status)).await;
                    return;
                }
                if !respond(request, &tx).await {
                    return;
                }
            }
        });
        Ok(tonic::Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn unimplemented_call(
        &self,
        _request: tonic::Request<Empty>,
    ) -> Result<tonic::Response<Empty>, Status> {
        Err(Status::unimplemented("TestService.UnimplementedCall is not implemented"))
    }
}

/// `grpc.testing.UnimplementedService`: every call is `UNIMPLEMENTED`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unimplemented;

#[tonic::async_trait]
impl UnimplementedService for Unimplemented {
    async fn unimplemented_call(
        &self,
        _request: tonic::Request<Empty>,
    ) -> Result<tonic::Response<Empty>, Status> {
        Err(Status::unimplemented("UnimplementedService.UnimplementedCall is not implemented"))
    }
}

/// The calls whose responses are never compressed.
///
/// gRPC's interop servers compress a streamed response only when its
/// request's `ResponseParameters` ask (grpc-go sets a compressor only then);
/// tonic compresses every message of a streamed response or none (the
/// per-response override applies to unary responses only), and a duplex
/// call's later requests may ask either way, so these are never compressed:
/// hiding the client's `grpc-accept-encoding` from tonic does it. Compressing
/// them unasked also trips a grpcio client race: when its deadline fires as a
/// compressed message arrives, it can pass the still-gzipped bytes to the
/// deserializer (INTERNAL `Exception deserializing response!` instead of
/// DEADLINE_EXCEEDED in timeout_on_sleeping_server, about 1 run in 50).
const DUPLEX: [&str; 2] =
    ["/grpc.testing.TestService/FullDuplexCall", "/grpc.testing.TestService/HalfDuplexCall"];

/// The test service with what its handlers cannot do through tonic: the
/// compressed flag of each request message (a request extension) and the
/// `x-grpc-test-echo-*` headers echoed (see [`crate::wire`]).
#[derive(Debug, Clone)]
struct Wire<S> {
    inner: S,
}

impl<S: NamedService> NamedService for Wire<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<Request<Body>> for Wire<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let echo = Echo::of(request.headers());
        if DUPLEX.contains(&request.uri().path()) {
            request.headers_mut().remove(GRPC_ACCEPT_ENCODING);
        }
        let request = scan_request(request).map(Body::new);
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await?;
            Ok(echo.apply(response).map(Body::new))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unary(request: SimpleRequest) -> Result<SimpleResponse, Status> {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        runtime.block_on(TestServer.unary_call(tonic::Request::new(request))).map(tonic::Response::into_inner)
    }

    #[test]
    fn unary_answers_with_response_size_zeros() {
        let response = unary(SimpleRequest { response_size: 314_159, ..Default::default() }).expect("ok");
        assert_eq!(response.payload, Some(zeros(314_159)));
    }

    #[test]
    fn unary_echoes_the_status_asked_for() {
        let status = EchoStatus { code: 2, message: "test status message".into() };
        let error =
            unary(SimpleRequest { response_status: Some(status), ..Default::default() }).expect_err("status");
        assert_eq!((error.code(), error.message()), (Code::Unknown, "test status message"));
    }

    #[test]
    fn an_uncompressed_request_that_expects_compression_is_invalid() {
        let expect = Some(BoolValue { value: true });
        let error =
            unary(SimpleRequest { expect_compressed: expect, ..Default::default() }).expect_err("invalid");
        assert_eq!((error.code(), error.message()), (Code::InvalidArgument, "expected a compressed request"));
    }
}
