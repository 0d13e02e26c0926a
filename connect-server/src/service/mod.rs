//! Handling calls: the four `ConnectService` handlers (the call
//! lifecycles), the streams they answer with, health, and the routes that
//! take each call to its service behind the token check.

mod admission;
mod auth;
mod greeting;
mod health;
mod inline_stream;
mod producer;
mod routes;

pub(crate) use admission::Admission;
pub(crate) use auth::{BearerAuth, Tokens};
pub use greeting::hello;
pub(crate) use health::Health;
pub(crate) use routes::{Dispatch, Routes};

use std::{sync::Arc, time::Duration};

use connect_proto::{ConnectService, ConnectServiceServer, RequestMessage, ResponseMessage, RpcKind};
use futures::future::Either;
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request, Response, Status, Streaming, codec::CompressionEncoding};
use tonic_types::{ErrorDetails, StatusExt};

use self::{
    greeting::stream_item,
    inline_stream::InlineStream,
    producer::{Interrupted, Producer, ResponseStream},
};
use crate::{grpc::deadline, telemetry::Stats};

/// How many responses `ServerStreamRPC` sends when the request's `count` is 0.
pub(crate) const DEFAULT_STREAM_COUNT: u32 = 10;

/// The per-call limits the handlers enforce.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most responses one `ServerStreamRPC` may ask for.
    pub max_stream_count: u32,
    /// Most milliseconds `ServerStreamRPC` may pause between responses.
    pub max_interval_ms: u32,
    /// Most bytes of `request_data` one `ClientStreamRPC` may send in all.
    pub max_client_stream_bytes: usize,
}

/// The largest messages, in bytes, a call may receive and send; larger ones
/// end it with `OUT_OF_RANGE`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageLimits {
    /// Largest message received.
    pub(crate) max_recv: usize,
    /// Largest message sent.
    pub(crate) max_send: usize,
}

/// The `ConnectService` handlers; cheap to clone into each worker.
#[derive(Debug, Clone)]
pub struct Handlers {
    limits: Limits,
    stats: Arc<Stats>,
    hard_stop: CancellationToken,
}

impl Handlers {
    /// A service that counts into `stats` and ends its streams when `hard_stop` is cancelled.
    pub fn new(limits: Limits, stats: Arc<Stats>, hard_stop: CancellationToken) -> Self {
        Self { limits, stats, hard_stop }
    }

    fn open_producer(
        &self,
        method: &'static str,
        request_deadline: Option<tokio::time::Instant>,
    ) -> (Producer, ResponseStream) {
        Producer::open(method, request_deadline, self.hard_stop.clone(), &self.stats)
    }

    /// Checks a `ServerStreamRPC` request against the limits; returns `(count, interval)`.
    fn stream_plan(&self, request: &RequestMessage) -> Result<(u32, Duration), Status> {
        let Limits { max_stream_count, max_interval_ms, .. } = self.limits;
        if request.count > max_stream_count {
            return Err(invalid_field("count", format!("count must be at most {max_stream_count}")));
        }
        if request.interval_ms > max_interval_ms {
            return Err(invalid_field(
                "interval_ms",
                format!("interval_ms must be at most {max_interval_ms}"),
            ));
        }
        let count = if request.count == 0 { DEFAULT_STREAM_COUNT } else { request.count };
        Ok((count, Duration::from_millis(request.interval_ms.into())))
    }
}

/// `ConnectService` as served: accepting and answering gzip and zstd, within
/// the message size limits.
pub(crate) fn connect_service(handlers: Handlers, messages: MessageLimits) -> ConnectServiceServer<Handlers> {
    ConnectServiceServer::new(handlers)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        // Responses are compressed only for clients that ask (`grpc-accept-encoding`).
        .send_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Zstd)
        .max_decoding_message_size(messages.max_recv)
        .max_encoding_message_size(messages.max_send)
}

/// The request header asking `UnaryRPC` to fail with that status code, its
/// message being the request's `request_data`. It lets clients and interop
/// suites check that any code and any message (non-ASCII, tabs, newlines)
/// survive the trip; `0` answers normally.
pub(crate) const ECHO_STATUS: &str = "x-echo-status";

/// The status an `x-echo-status: code` request asks for, or why it cannot have it.
fn echoed_status(code: &[u8], message: &str) -> Status {
    let code = std::str::from_utf8(code).ok().and_then(|code| code.parse::<i32>().ok());
    match code {
        Some(code @ 1..=16) => Status::new(Code::from(code), message),
        _ => invalid_field(ECHO_STATUS, format!("{ECHO_STATUS} must be a status code from 1 to 16")),
    }
}

/// `INVALID_ARGUMENT` with a `google.rpc.BadRequest` field violation.
fn invalid_field(field: &str, description: String) -> Status {
    let details = ErrorDetails::with_bad_request_violation(field, description.clone());
    Status::with_error_details(Code::InvalidArgument, description, details)
}

#[tonic::async_trait]
impl ConnectService for Handlers {
    async fn unary_rpc(&self, request: Request<RequestMessage>) -> Result<Response<ResponseMessage>, Status> {
        self.stats.record_call(RpcKind::Unary);
        if let Some(code) = request.metadata().get(ECHO_STATUS) {
            return Err(echoed_status(code.as_bytes(), &request.get_ref().request_data));
        }
        Ok(Response::new(hello(&request.get_ref().request_data)))
    }

    /// Short unpaced streams are generated inline; paced and long ones come from a producer task.
    type ServerStreamRPCStream = Either<InlineStream, ResponseStream>;

    async fn server_stream_rpc(
        &self,
        request: Request<RequestMessage>,
    ) -> Result<Response<Self::ServerStreamRPCStream>, Status> {
        self.stats.record_call(RpcKind::ServerStream);
        let call_deadline = deadline::of(&request);
        let request = request.into_inner();
        let (count, interval) = self.stream_plan(&request)?;
        if interval.is_zero() && inline_stream::fits(&request.request_data, count) {
            // Generated in microseconds: the shutdown grace is checked once, before it starts.
            if self.hard_stop.is_cancelled() {
                return Err(Status::unavailable("server shutting down"));
            }
            let open = self.stats.open_stream();
            let stream =
                InlineStream::new("ServerStreamRPC", request.request_data, count, call_deadline, open);
            return Ok(Response::new(Either::Left(stream)));
        }
        let (mut producer, stream) = self.open_producer("ServerStreamRPC", call_deadline);
        tokio::spawn(async move {
            let outcome = async {
                for i in 1..=count {
                    if i > 1 && !interval.is_zero() {
                        producer.pause(interval).await?;
                    }
                    producer.queue(stream_item(&request.request_data, i)).await?;
                }
                Ok(())
            }
            .await;
            producer.finish(outcome).await;
        });
        Ok(Response::new(Either::Right(stream)))
    }

    async fn client_stream_rpc(
        &self,
        request: Request<Streaming<RequestMessage>>,
    ) -> Result<Response<ResponseMessage>, Status> {
        self.stats.record_call(RpcKind::ClientStream);
        let call_deadline = deadline::of(&request);
        let _open = self.stats.open_stream();
        let mut deadline_timer = deadline::timer(call_deadline);
        let mut inbound = request.into_inner();
        let mut parts = Vec::new();
        let mut total_bytes = 0usize;
        loop {
            let next = tokio::select! {
                biased;
                () = self.hard_stop.cancelled() => return Err(Status::unavailable("server shutting down")),
                () = deadline::expired(&mut deadline_timer) => return Err(Status::deadline_exceeded("deadline exceeded")),
                next = inbound.message() => next,
            };
            match next {
                Ok(Some(message)) => {
                    total_bytes += message.request_data.len();
                    if total_bytes > self.limits.max_client_stream_bytes {
                        return Err(Status::resource_exhausted(format!(
                            "client stream request_data exceeds {} bytes",
                            self.limits.max_client_stream_bytes
                        )));
                    }
                    parts.push(message.request_data);
                }
                Ok(None) => break,
                Err(status) => {
                    tracing::info!(method = "ClientStreamRPC", code = ?status.code(), "Connection dropped!");
                    return Err(status);
                }
            }
        }
        Ok(Response::new(hello(&parts.join(", "))))
    }

    type BidiStreamRPCStream = ResponseStream;

    async fn bidi_stream_rpc(
        &self,
        request: Request<Streaming<RequestMessage>>,
    ) -> Result<Response<Self::BidiStreamRPCStream>, Status> {
        self.stats.record_call(RpcKind::Bidi);
        let call_deadline = deadline::of(&request);
        let mut inbound = request.into_inner();
        let (mut producer, stream) = self.open_producer("BidiStreamRPC", call_deadline);
        tokio::spawn(async move {
            let outcome = async {
                loop {
                    let next = tokio::select! {
                        interrupted = producer.interrupted() => return Err(interrupted),
                        next = inbound.message() => next,
                    };
                    match next {
                        Ok(Some(message)) => producer.send(hello(&message.request_data)).await?,
                        Ok(None) => return Ok(()),
                        Err(status) => return Err(Interrupted::Inbound(status)),
                    }
                }
            }
            .await;
            producer.finish(outcome).await;
        });
        Ok(Response::new(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The limits the server's flags default to.
    const DEFAULT_LIMITS: Limits =
        Limits { max_stream_count: 1_000_000, max_interval_ms: 60_000, max_client_stream_bytes: 4 << 20 };

    fn service() -> Handlers {
        Handlers::new(DEFAULT_LIMITS, Arc::default(), CancellationToken::new())
    }

    #[tokio::test]
    async fn unary_greets() {
        let request = Request::new(RequestMessage { request_data: "People".into(), ..Default::default() });
        let response = service().unary_rpc(request).await.unwrap();
        assert_eq!(response.get_ref().response_data, "Hello, People");
    }

    #[test]
    fn stream_plan_defaults_to_ten_without_pause() {
        let plan = service().stream_plan(&RequestMessage::default()).unwrap();
        assert_eq!(plan, (10, Duration::ZERO));
    }

    #[test]
    fn stream_plan_names_the_field_in_its_bad_request_details() {
        let request = RequestMessage { count: 1_000_001, ..Default::default() };
        let status = service().stream_plan(&request).unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_details_bad_request().expect("BadRequest details");
        assert_eq!(details.field_violations.len(), 1);
        assert_eq!(details.field_violations[0].field, "count");
        assert_eq!(details.field_violations[0].description, "count must be at most 1000000");
    }
}
