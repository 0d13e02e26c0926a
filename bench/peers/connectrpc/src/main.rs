//! Benchmark peer: `ConnectService` on the `connectrpc` crate's built-in
//! hyper server (Connect, gRPC and gRPC-Web on one port; our load generators
//! speak gRPC over h2c). Usage: `server ADDR`, e.g. `server 127.0.0.1:50099`.

// Handlers name their concrete body types instead of the trait's `impl
// Encodable`, as connectrpc's README examples do (the crate allows it too).
#![allow(refining_impl_trait)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use connectrpc::{
    ConnectError, InboundStream, RequestContext, Response, Router, Server, ServiceRequest,
    ServiceResult, ServiceStream,
};
use futures::StreamExt;

// The generated client and view aliases go unused in a server-only binary.
#[allow(dead_code, unused_imports)]
mod proto {
    connectrpc::include_generated!();
}
use proto::{ConnectService, RequestMessage, ResponseMessage};

fn hello(data: &str) -> ResponseMessage {
    ResponseMessage { response_data: format!("Hello, {data}"), ..Default::default() }
}

struct Greeter;

impl ConnectService for Greeter {
    async fn unary_rpc(
        &self,
        _ctx: RequestContext,
        request: ServiceRequest<'_, RequestMessage>,
    ) -> ServiceResult<ResponseMessage> {
        Response::ok(hello(request.request_data))
    }

    async fn server_stream_rpc(
        &self,
        _ctx: RequestContext,
        request: ServiceRequest<'_, RequestMessage>,
    ) -> ServiceResult<ServiceStream<ResponseMessage>> {
        let n = if request.count == 0 { 10 } else { request.count };
        let interval = Duration::from_millis(u64::from(request.interval_ms));
        // The stream must be 'static: copy the field out of the borrowed request.
        let data = request.request_data.to_owned();
        let items = futures::stream::iter(1..=n).then(move |i| {
            let text = format!("Hello, {data}: server({i}) ");
            async move {
                if i > 1 && !interval.is_zero() {
                    tokio::time::sleep(interval).await;
                }
                Ok::<_, ConnectError>(ResponseMessage { response_data: text, ..Default::default() })
            }
        });
        Response::stream_ok(items)
    }

    async fn client_stream_rpc(
        &self,
        _ctx: RequestContext,
        mut requests: InboundStream<RequestMessage>,
    ) -> ServiceResult<ResponseMessage> {
        let mut parts = Vec::new();
        while let Some(message) = requests.next().await {
            parts.push(message?.request_data().to_owned());
        }
        Response::ok(hello(&parts.join(", ")))
    }

    async fn bidi_stream_rpc(
        &self,
        _ctx: RequestContext,
        requests: InboundStream<RequestMessage>,
    ) -> ServiceResult<ServiceStream<ResponseMessage>> {
        Response::stream_ok(requests.map(|message| Ok(hello(message?.request_data()))))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .ok_or("usage: server ADDR (e.g. 127.0.0.1:50099)")?
        .parse()?;
    let router = Router::new().add_service(Arc::new(Greeter));
    Server::new(router).serve(addr).await?;
    Ok(())
}
