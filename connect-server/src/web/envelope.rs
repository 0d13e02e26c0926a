//! Connect's enveloped messages: a flags byte, a big-endian `u32` length, the
//! message. The layout is gRPC's length prefix (`connect_proto::framing`,
//! flag 1: compressed), plus flag 2 for the end-of-stream message that
//! carries a stream's status.

use bytes::{Buf, Bytes, BytesMut};
use connect_proto::framing::{self, PREFIX_LEN};
use tonic::Status;

use super::compression;

pub(crate) use connect_proto::framing::END_STREAM;

/// `payload` in an envelope with `flags`.
pub(crate) fn envelope(flags: u8, payload: &[u8]) -> Bytes {
    Bytes::from(framing::encode(flags, payload))
}

/// Splits a byte stream into enveloped messages, none longer than its limit.
#[derive(Debug)]
pub(crate) struct Decoder {
    buffer: BytesMut,
    limit: usize,
}

impl Decoder {
    /// A decoder refusing messages over `limit` bytes.
    pub(crate) fn new(limit: usize) -> Self {
        Self { buffer: BytesMut::new(), limit }
    }

    /// Adds bytes read from the stream.
    pub(crate) fn push(&mut self, data: &[u8]) {
        self.buffer.extend_from_slice(data);
    }

    /// The next whole message (its flags and bytes); `Ok(None)` until one has
    /// arrived. A message over the limit is refused as soon as its length is
    /// read, before its bytes are buffered.
    pub(crate) fn next(&mut self) -> Result<Option<(u8, Bytes)>, Status> {
        let Some(prefix) = self.buffer.first_chunk::<PREFIX_LEN>() else {
            return Ok(None);
        };
        let (flags, len) = framing::decode_prefix(*prefix);
        let len = len as usize;
        if len > self.limit {
            return Err(compression::too_large(self.limit));
        }
        if self.buffer.len() < PREFIX_LEN + len {
            return Ok(None);
        }
        self.buffer.advance(PREFIX_LEN);
        Ok(Some((flags, self.buffer.split_to(len).freeze())))
    }

    /// Whether bytes of an unfinished message are left over.
    pub(crate) fn has_partial(&self) -> bool {
        !self.buffer.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_messages_across_reads() {
        let mut stream = envelope(0, b"hello").to_vec();
        stream.extend_from_slice(&envelope(END_STREAM, b"{}"));
        let mut decoder = Decoder::new(16);
        decoder.push(&stream[..3]);
        assert_eq!(decoder.next().unwrap(), None);
        decoder.push(&stream[3..]);
        assert_eq!(decoder.next().unwrap(), Some((0, Bytes::from_static(b"hello"))));
        assert_eq!(decoder.next().unwrap(), Some((END_STREAM, Bytes::from_static(b"{}"))));
        assert_eq!(decoder.next().unwrap(), None);
        assert!(!decoder.has_partial());
    }

    #[test]
    fn refuses_a_long_message_from_its_length() {
        let mut decoder = Decoder::new(4);
        decoder.push(&[0, 0, 0, 0, 5]);
        let error = decoder.next().unwrap_err();
        assert_eq!(error.code(), tonic::Code::ResourceExhausted);
    }
}
