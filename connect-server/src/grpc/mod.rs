//! The rules of gRPC over HTTP/2 that the server applies itself: which
//! requests are gRPC, the call's deadline, the length-prefixed framing, and
//! the final status.

pub(crate) mod content_type;
pub mod deadline;
pub(crate) mod frames;
pub(crate) mod status;
