//! The benchmark baseline: the least tonic server a user would write for
//! `ConnectService`, with default `#[tokio::main(flavor = "current_thread")]` and default
//! `Server::builder()`, the same responses as `connect-server`, nothing else
//! (no limits, deadlines, counters, logging or shutdown).
//!
//! Run: `cargo run --release -p connect-server --example baseline_server -- 127.0.0.1:50052`

use std::pin::Pin;

use connect_proto::{ConnectService, ConnectServiceServer, RequestMessage, ResponseMessage};
use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming, transport::Server};

type ResponseStream = Pin<Box<dyn Stream<Item = Result<ResponseMessage, Status>> + Send>>;

struct Baseline;

fn hello(data: &str) -> ResponseMessage {
    ResponseMessage { response_data: format!("Hello, {data}") }
}

#[tonic::async_trait]
impl ConnectService for Baseline {
    async fn unary_rpc(&self, request: Request<RequestMessage>) -> Result<Response<ResponseMessage>, Status> {
        Ok(Response::new(hello(&request.get_ref().request_data)))
    }

    type ServerStreamRPCStream = ResponseStream;

    async fn server_stream_rpc(
        &self,
        request: Request<RequestMessage>,
    ) -> Result<Response<Self::ServerStreamRPCStream>, Status> {
        let RequestMessage { request_data, count, .. } = request.into_inner();
        let count = if count == 0 { 10 } else { count };
        let responses = futures::stream::iter(1..=count).map(move |i| {
            Ok(ResponseMessage { response_data: format!("Hello, {request_data}: server({i}) ") })
        });
        Ok(Response::new(Box::pin(responses)))
    }

    async fn client_stream_rpc(
        &self,
        request: Request<Streaming<RequestMessage>>,
    ) -> Result<Response<ResponseMessage>, Status> {
        let mut inbound = request.into_inner();
        let mut parts = Vec::new();
        while let Some(message) = inbound.message().await? {
            parts.push(message.request_data);
        }
        Ok(Response::new(hello(&parts.join(", "))))
    }

    type BidiStreamRPCStream = ResponseStream;

    async fn bidi_stream_rpc(
        &self,
        request: Request<Streaming<RequestMessage>>,
    ) -> Result<Response<Self::BidiStreamRPCStream>, Status> {
        let replies = request.into_inner().map(|message| message.map(|m| hello(&m.request_data)));
        Ok(Response::new(Box::pin(replies)))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:50052".to_owned()).parse()?;
    println!("Baseline server listening on {addr}");
    Server::builder().add_service(ConnectServiceServer::new(Baseline)).serve(addr).await?;
    Ok(())
}
