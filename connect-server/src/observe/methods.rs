//! The methods the metrics know by name, so their label handles can be
//! resolved once instead of on every call. Calls to any other path are
//! logged but not counted: an unknown path must not create new series
//! (anyone could otherwise grow the registry without bound), which is also
//! what go-grpc-prometheus does, since unknown methods never reach it.

/// The `grpc_type` label: how many messages flow each way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RpcType {
    Unary,
    ServerStream,
    ClientStream,
    BidiStream,
}

impl RpcType {
    /// The label value, as go-grpc-prometheus writes it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Unary => "unary",
            Self::ServerStream => "server_stream",
            Self::ClientStream => "client_stream",
            Self::BidiStream => "bidi_stream",
        }
    }
}

/// One method the metrics know.
#[derive(Debug)]
pub(crate) struct KnownMethod {
    /// The request path, `/service/method`.
    pub(crate) path: &'static str,
    pub(crate) service: &'static str,
    pub(crate) method: &'static str,
    pub(crate) kind: RpcType,
    /// Whether its series exist from the start (the service this server always serves).
    pub(crate) eager: bool,
}

const fn known(
    path: &'static str,
    service: &'static str,
    method: &'static str,
    kind: RpcType,
    eager: bool,
) -> KnownMethod {
    KnownMethod { path, service, method, kind, eager }
}

/// `ConnectService`'s methods, then the standard services a deployment may add
/// (health, reflection), whose series appear at their first call.
pub(crate) const KNOWN: [KnownMethod; 8] = [
    known("/ConnectService/UnaryRPC", "ConnectService", "UnaryRPC", RpcType::Unary, true),
    known(
        "/ConnectService/ServerStreamRPC",
        "ConnectService",
        "ServerStreamRPC",
        RpcType::ServerStream,
        true,
    ),
    known(
        "/ConnectService/ClientStreamRPC",
        "ConnectService",
        "ClientStreamRPC",
        RpcType::ClientStream,
        true,
    ),
    known("/ConnectService/BidiStreamRPC", "ConnectService", "BidiStreamRPC", RpcType::BidiStream, true),
    known("/grpc.health.v1.Health/Check", "grpc.health.v1.Health", "Check", RpcType::Unary, false),
    known("/grpc.health.v1.Health/Watch", "grpc.health.v1.Health", "Watch", RpcType::ServerStream, false),
    known(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "grpc.reflection.v1.ServerReflection",
        "ServerReflectionInfo",
        RpcType::BidiStream,
        false,
    ),
    known(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "grpc.reflection.v1alpha.ServerReflection",
        "ServerReflectionInfo",
        RpcType::BidiStream,
        false,
    ),
];

/// The index in [`KNOWN`] of the method at `path`.
pub(crate) fn lookup(path: &str) -> Option<usize> {
    KNOWN.iter().position(|method| method.path == path)
}
