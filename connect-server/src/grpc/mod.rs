//! The rules of gRPC over HTTP/2 that the server applies itself: which
//! requests are gRPC, the call's deadline and the final status. (The
//! length-prefixed framing, the header names and the `grpc-timeout` format
//! are shared with the client: `connect_proto::{framing, headers, timeout}`.)

pub(crate) mod content_type;
pub(crate) mod deadline;
pub(crate) mod status;
