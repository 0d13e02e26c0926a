//! Talking to the server below the gRPC client, for tests that must control or
//! see exactly what travels on the wire:
//!
//! - [`grpc`]: gRPC length-prefixed messages, true or lying about their length;
//! - [`client`]: HTTP/2 requests through the `h2` crate with any headers and body
//!   bytes (no tonic, so no client-side timer or validation in the way);
//! - [`frames`]: hand-made HTTP/2 frames on a bare TCP socket, for what even `h2`
//!   will not send (floods, refused and reset streams, unanswered pings);
//! - [`web`]: HTTP/1.1 and HTTP/2 requests through hyper's client, as a browser
//!   or `curl` sends them to the web protocols.

pub mod client;
pub mod frames;
pub mod grpc;
pub mod web;

/// The path of `UnaryRPC`.
pub const UNARY_PATH: &str = "/ConnectService/UnaryRPC";

/// The path of `ClientStreamRPC`.
pub const CLIENT_STREAM_PATH: &str = "/ConnectService/ClientStreamRPC";
