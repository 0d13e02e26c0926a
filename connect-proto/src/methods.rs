//! The four RPC kinds and the methods this system serves, named once for the
//! server's handlers, metrics and logs and the client's commands and bench.

use crate::SERVICE_NAME;

/// The four call lifecycles: how many messages flow each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum RpcKind {
    /// `UnaryRPC`: one request, one response.
    Unary,
    /// `ServerStreamRPC`: one request, a stream of responses.
    ServerStream,
    /// `ClientStreamRPC`: a stream of requests, one response.
    ClientStream,
    /// `BidiStreamRPC`: a stream each way.
    Bidi,
}

impl RpcKind {
    /// The four kinds, in the order of the proto.
    pub const ALL: [Self; 4] = [Self::Unary, Self::ServerStream, Self::ClientStream, Self::Bidi];

    /// The `ConnectService` method of this kind, as it appears on the wire.
    pub fn method(self) -> &'static str {
        match self {
            Self::Unary => "UnaryRPC",
            Self::ServerStream => "ServerStreamRPC",
            Self::ClientStream => "ClientStreamRPC",
            Self::Bidi => "BidiStreamRPC",
        }
    }

    /// The `grpc_type` label, as go-grpc-prometheus writes it.
    pub fn grpc_type(self) -> &'static str {
        match self {
            Self::Unary => "unary",
            Self::ServerStream => "server_stream",
            Self::ClientStream => "client_stream",
            Self::Bidi => "bidi_stream",
        }
    }

    /// Whether a call may carry more than one message in some direction.
    pub fn is_stream(self) -> bool {
        self != Self::Unary
    }
}

/// One method a server of this system may serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Method {
    /// The request path, `/service/method`.
    pub path: &'static str,
    /// The fully-qualified service name.
    pub service: &'static str,
    /// The method name.
    pub method: &'static str,
    /// How many messages flow each way.
    pub kind: RpcKind,
}

impl Method {
    /// Whether it is a `ConnectService` method (rather than health or reflection).
    pub fn is_connect_service(&self) -> bool {
        self.service == SERVICE_NAME
    }
}

const fn method(path: &'static str, service: &'static str, method: &'static str, kind: RpcKind) -> Method {
    Method { path, service, method, kind }
}

/// `ConnectService`'s methods, then the standard services the server adds
/// (health, reflection v1 and v1alpha).
pub const METHODS: [Method; 8] = [
    method("/ConnectService/UnaryRPC", SERVICE_NAME, "UnaryRPC", RpcKind::Unary),
    method("/ConnectService/ServerStreamRPC", SERVICE_NAME, "ServerStreamRPC", RpcKind::ServerStream),
    method("/ConnectService/ClientStreamRPC", SERVICE_NAME, "ClientStreamRPC", RpcKind::ClientStream),
    method("/ConnectService/BidiStreamRPC", SERVICE_NAME, "BidiStreamRPC", RpcKind::Bidi),
    method("/grpc.health.v1.Health/Check", "grpc.health.v1.Health", "Check", RpcKind::Unary),
    method("/grpc.health.v1.Health/Watch", "grpc.health.v1.Health", "Watch", RpcKind::ServerStream),
    method(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "grpc.reflection.v1.ServerReflection",
        "ServerReflectionInfo",
        RpcKind::Bidi,
    ),
    method(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "grpc.reflection.v1alpha.ServerReflection",
        "ServerReflectionInfo",
        RpcKind::Bidi,
    ),
];

/// The index in [`METHODS`] of the method at `path`.
pub fn lookup(path: &str) -> Option<usize> {
    METHODS.iter().position(|method| method.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connect_service_methods_come_first_in_kind_order() {
        for (method, kind) in METHODS.iter().zip(RpcKind::ALL) {
            assert_eq!(method.kind, kind);
            assert_eq!(method.path, format!("/{SERVICE_NAME}/{}", kind.method()));
            assert!(method.is_connect_service());
        }
        assert!(!METHODS[4].is_connect_service());
        assert_eq!(lookup("/grpc.health.v1.Health/Watch"), Some(5));
        assert_eq!(lookup("/ConnectService/Nope"), None);
    }
}
