//! Which protocol the client speaks, and the transport every call goes through.
//!
//! Every command makes gRPC calls with tonic. The protocol is a decorator on
//! the transport below them, so the commands stay the same for all three:
//! gRPC goes out as it is; gRPC-Web through tonic-web's client layer; Connect
//! through the `Connect` decorator (`channel/connect/`), which translates each gRPC
//! call into a Connect call and the answer back.

use std::{
    fmt,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response, Version};
use tonic::{body::Body, transport::Channel};
use tower::{BoxError, Layer, Service, ServiceExt, util::BoxCloneSyncService};

use super::connect::Connect;

/// The protocols the client speaks (`--protocol`, as `buf curl` names them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Protocol {
    /// gRPC over HTTP/2.
    #[default]
    Grpc,
    /// gRPC-Web (binary), over HTTP/2 or HTTP/1.1.
    #[value(name = "grpcweb")]
    GrpcWeb,
    /// The Connect protocol, over HTTP/2 or HTTP/1.1.
    Connect,
}

/// How the Connect protocol encodes messages (`--codec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Codec {
    /// Binary protobuf: `application/proto`, `application/connect+proto`.
    #[default]
    Proto,
    /// Proto3 JSON: `application/json`, `application/connect+json`.
    Json,
}

/// An HTTP client for gRPC requests: the connection (HTTP/2 or HTTP/1.1)
/// with the protocol's translation on top. What every call is made on.
#[derive(Clone)]
pub struct Transport(BoxCloneSyncService<Request<Body>, Response<Body>, BoxError>);

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Transport")
    }
}

impl Transport {
    /// Any HTTP client service as a transport.
    pub fn new<S, B>(service: S) -> Self
    where
        S: Service<Request<Body>, Response = Response<B>> + Clone + Send + Sync + 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let service =
            service.map_response(|response: Response<B>| response.map(Body::new)).map_err(Into::into);
        Self(BoxCloneSyncService::new(service))
    }

    /// This transport speaking `protocol` (`codec` for Connect); `http1`: the
    /// connection below is HTTP/1.1.
    pub(crate) fn speaking(self, protocol: Protocol, codec: Codec, http1: bool) -> Self {
        match protocol {
            Protocol::Grpc => self,
            Protocol::GrpcWeb => {
                // tonic-web marks its requests HTTP/1.1; the connection below decides.
                let version = if http1 { Version::HTTP_11 } else { Version::HTTP_2 };
                let below = self.map_request(move |request: Request<tonic_web::GrpcWebCall<Body>>| {
                    let mut request = request.map(Body::new);
                    *request.version_mut() = version;
                    request
                });
                Self::new(tonic_web::GrpcWebClientLayer::new().layer(below))
            }
            Protocol::Connect => Self::new(Connect::new(self, codec, http1)),
        }
    }
}

impl From<Channel> for Transport {
    fn from(channel: Channel) -> Self {
        Self::new(channel)
    }
}

impl Service<Request<Body>> for Transport {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future =
        <BoxCloneSyncService<Request<Body>, Response<Body>, BoxError> as Service<Request<Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        self.0.call(request)
    }
}
