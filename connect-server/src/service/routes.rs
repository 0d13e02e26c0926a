//! The services one listener serves: `ConnectService` (with compression,
//! message limits and auth), health, and reflection v1 and v1alpha.
//!
//! `ConnectService` calls are told apart by a prefix check and go straight to
//! their service; only the others go through tonic's router (axum), whose
//! matching, boxed route clone and path parameters cost each call more than
//! the whole unary handler.

use std::{
    convert::Infallible,
    task::{Context, Poll},
};

use connect_proto::{ConnectServiceServer, FILE_DESCRIPTOR_SET};
use futures::future::Either;
use futures::future::{BoxFuture, ready};
use http::{Request, Response};
use tonic::{body::Body, codec::CompressionEncoding, server::NamedService, service::Routes};
use tower::{Layer, Service};

use super::{BearerAuth, Handlers, Health, MessageLimits};

/// `ConnectService` as served (the auth check is in [`Dispatch`]).
type ConnectRoute = ConnectServiceServer<Handlers>;

/// `ConnectService` accepting and answering gzip and zstd, within the message size limits.
fn connect_service(messages: MessageLimits, service: Handlers) -> ConnectRoute {
    ConnectServiceServer::new(service)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        // Responses are compressed only for clients that ask (`grpc-accept-encoding`).
        .send_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Zstd)
        .max_decoding_message_size(messages.max_recv)
        .max_encoding_message_size(messages.max_send)
}

/// Every service of one listener: the layer that takes `ConnectService` calls
/// to their service, and tonic's router with the others.
pub(crate) fn routes(
    service: Handlers,
    messages: MessageLimits,
    auth: BearerAuth,
    health: &Health,
) -> anyhow::Result<(DispatchLayer, Routes)> {
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            // So reflection tools can call the health service too.
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let others = Routes::new(health.service())
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?);
    let dispatch = DispatchLayer { connect: connect_service(messages, service), auth };
    Ok((dispatch, others))
}

/// Puts `ConnectService` in front of a router (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct DispatchLayer {
    connect: ConnectRoute,
    auth: BearerAuth,
}

impl<S> Layer<S> for DispatchLayer {
    type Service = Dispatch<S>;

    fn layer(&self, others: S) -> Self::Service {
        Dispatch { connect: self.connect.clone(), auth: self.auth.clone(), others }
    }
}

/// Sends `ConnectService` calls (with the right token, when auth is on) to
/// their service and every other request (health and reflection stay open) to `S`.
#[derive(Debug, Clone)]
pub(crate) struct Dispatch<S> {
    connect: ConnectRoute,
    auth: BearerAuth,
    others: S,
}

/// Whether `path` names a `ConnectService` method (`/ConnectService/...`).
fn is_connect_path(path: &str) -> bool {
    let name = <ConnectServiceServer<Handlers> as NamedService>::NAME;
    path.strip_prefix('/').and_then(|rest| rest.strip_prefix(name)).is_some_and(|rest| rest.starts_with('/'))
}

impl<S> Service<Request<Body>> for Dispatch<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    // The rare paths (refused calls, health, reflection) are boxed: every call's future
    // is as large as its largest variant, and hyper moves it around more than once.
    type Future = Either<
        <ConnectRoute as Service<Request<Body>>>::Future,
        BoxFuture<'static, Result<Response<Body>, Infallible>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // tonic's generated servers are always ready; the router decides for the rest.
        self.others.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if is_connect_path(request.uri().path()) {
            match self.auth.check(request.headers()) {
                Ok(()) => Either::Left(self.connect.call(request)),
                Err(status) => Either::Right(Box::pin(ready(Ok(status.into_http())))),
            }
        } else {
            Either::Right(Box::pin(self.others.call(request)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_connect_service_paths_take_the_short_way() {
        assert!(is_connect_path("/ConnectService/UnaryRPC"));
        assert!(is_connect_path("/ConnectService/Nope"));
        assert!(!is_connect_path("/ConnectServiceX/UnaryRPC"));
        assert!(!is_connect_path("/grpc.health.v1.Health/Check"));
        assert!(!is_connect_path("/ConnectService"));
    }
}
