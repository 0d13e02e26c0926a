//! The four RPC kinds, named once for the server's handlers, metrics and
//! logs and the client's commands and bench.

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

    /// The kind of a method whose client and server send streams (or not), as
    /// its descriptor says.
    pub fn of(client_streaming: bool, server_streaming: bool) -> Self {
        match (client_streaming, server_streaming) {
            (false, false) => Self::Unary,
            (false, true) => Self::ServerStream,
            (true, false) => Self::ClientStream,
            (true, true) => Self::Bidi,
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_follows_the_streaming_flags() {
        assert_eq!(RpcKind::of(false, false), RpcKind::Unary);
        assert_eq!(RpcKind::of(false, true), RpcKind::ServerStream);
        assert_eq!(RpcKind::of(true, false), RpcKind::ClientStream);
        assert_eq!(RpcKind::of(true, true), RpcKind::Bidi);
        for kind in RpcKind::ALL {
            assert_eq!(kind.is_stream(), kind != RpcKind::Unary);
        }
    }
}
