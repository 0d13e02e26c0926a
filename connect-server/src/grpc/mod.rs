//! The rules of gRPC over HTTP/2 that the server applies itself: which
//! requests are gRPC, the call's deadline and the final status. (The
//! length-prefixed framing is shared with the client: `connect_proto::framing`.)

pub(crate) mod content_type;
pub mod deadline;
pub(crate) mod status;
