//! gRPC length-prefixed messages: a flag byte, a 4-byte length, the payload.

use bytes::{Bytes, BytesMut};
use connect_proto::{RequestMessage, framing};
use prost::Message;

/// One gRPC length-prefixed message: flag byte, declared length, then `payload`
/// (the declared length may lie, for hostile-input tests).
pub fn grpc_frame(compressed: bool, declared_len: u32, payload: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(framing::PREFIX_LEN + payload.len());
    frame.extend_from_slice(&framing::prefix(compressed, declared_len));
    frame.extend_from_slice(payload);
    frame.freeze()
}

/// A gRPC message whose prefix tells the truth.
pub fn grpc_message(payload: &[u8]) -> Bytes {
    grpc_frame(false, payload.len().try_into().expect("small payload"), payload)
}

/// A `RequestMessage` framed for the wire (uncompressed).
pub fn request_message(message: &RequestMessage) -> Bytes {
    grpc_message(&message.encode_to_vec())
}
