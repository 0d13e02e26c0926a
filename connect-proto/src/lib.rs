//! Generated types, client and server for `ConnectService`, compiled from
//! `proto/connect.proto` at build time.
//!
//! The proto has no `package` line (the original Python system has none), so
//! everything generated lives at the top of [`connect`].
//!
//! It also holds the vocabulary the server and the client share: the names
//! of status codes ([`codes`]), gRPC's message framing ([`framing`]), the
//! header names and the reserved headers ([`headers`]), the `grpc-timeout`
//! format ([`timeout`]) and the four RPC kinds ([`methods`]).

/// The generated messages, `connect_service_client` and `connect_service_server`.
pub mod connect {
    #![allow(missing_docs, unreachable_pub)]
    tonic::include_proto!("_");
}

pub mod codec;
pub mod codes;
pub mod framing;
pub mod headers;
pub mod methods;
pub mod timeout;

pub use methods::RpcKind;

pub use connect::connect_service_client::ConnectServiceClient;
pub use connect::connect_service_server::{ConnectService, ConnectServiceServer};
pub use connect::{RequestMessage, ResponseMessage};

/// The encoded `FileDescriptorSet` of `proto/connect.proto`, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/connect_descriptor.bin"));

/// The fully-qualified service name as it appears on the wire.
pub const SERVICE_NAME: &str = "ConnectService";
