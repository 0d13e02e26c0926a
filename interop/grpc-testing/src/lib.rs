//! gRPC's interop test service, `grpc.testing.TestService`, as gRPC's
//! `doc/interop-test-descriptions.md` describes it: served by
//! connect-server's own stack ([`server`], the `interop-server` binary) and
//! called by a client on connect-client's channel ([`client`], the
//! `interop-client` binary). `interop/grpc-testing/run` runs both against
//! gRPC's Ruby implementation, and Python grpcio against the server.

/// The generated messages, clients and servers of `grpc.testing`.
pub mod pb {
    #![allow(missing_docs, unreachable_pub)]
    tonic::include_proto!("grpc.testing");
}

/// The encoded `FileDescriptorSet` of `grpc.testing` (test.proto and what it imports).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/grpc_testing_descriptor.bin"));

pub mod client;
pub mod server;
pub mod wire;

/// The request header whose value the server echoes in its response headers.
pub const ECHO_INITIAL: &str = "x-grpc-test-echo-initial";
/// The request header whose (binary) value the server echoes in its trailers.
pub const ECHO_TRAILING: &str = "x-grpc-test-echo-trailing-bin";

/// A payload of `size` zero bytes (the interop cases' payloads are all zeros).
pub fn zeros(size: usize) -> pb::Payload {
    pb::Payload { r#type: pb::PayloadType::Compressable.into(), body: vec![0; size] }
}
