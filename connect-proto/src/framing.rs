//! gRPC's length-prefixed messages: a compressed flag, a big-endian `u32`
//! length, then that many bytes. One definition for the server's message
//! counts, Connect's envelopes (the same prefix, with a flag of their own for
//! the end of a stream), the load generator's decoder and the tests'
//! hand-made frames.

/// Bytes before each message: the flags and the length.
pub const PREFIX_LEN: usize = 5;

/// The flag of a compressed message.
pub const COMPRESSED: u8 = 0b01;

/// The flag of Connect's end-of-stream message, which carries a stream's
/// status and trailers as JSON.
pub const END_STREAM: u8 = 0b10;

/// The prefix of a message of `len` bytes.
pub fn prefix(compressed: bool, len: u32) -> [u8; PREFIX_LEN] {
    flagged_prefix(u8::from(compressed), len)
}

/// The prefix of a message of `len` bytes with `flags`.
fn flagged_prefix(flags: u8, len: u32) -> [u8; PREFIX_LEN] {
    let [a, b, c, d] = len.to_be_bytes();
    [flags, a, b, c, d]
}

/// The flags and the payload length a prefix declares.
pub fn decode_prefix(prefix: [u8; PREFIX_LEN]) -> (u8, u32) {
    let [flags, a, b, c, d] = prefix;
    (flags, u32::from_be_bytes([a, b, c, d]))
}

/// `payload` as one message: its prefix with `flags`, then its bytes.
///
/// # Panics
///
/// If `payload` is 4 GiB or more, which no length prefix can declare.
pub fn encode(flags: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a message is shorter than 4 GiB");
    let mut out = Vec::with_capacity(PREFIX_LEN + payload.len());
    out.extend_from_slice(&flagged_prefix(flags, len));
    out.extend_from_slice(payload);
    out
}

/// One whole message, as it lies in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// Whether the sender compressed it (`grpc-encoding`): any flag set.
    pub compressed: bool,
    /// Its flags byte, for the protocols with flags of their own (gRPC-Web's
    /// trailers, Connect's end of stream).
    pub flags: u8,
    /// Its bytes.
    pub payload: &'a [u8],
}

/// The whole message at the front of `data` and the bytes after it; `None`
/// while `data` holds less than a whole message.
pub fn split(data: &[u8]) -> Option<(Message<'_>, &[u8])> {
    let (prefix, rest) = data.split_first_chunk::<PREFIX_LEN>()?;
    let (flags, len) = decode_prefix(*prefix);
    let (payload, rest) = rest.split_at_checked(usize::try_from(len).ok()?)?;
    Some((Message { compressed: flags != 0, flags, payload }, rest))
}

/// Where a byte stream is within the gRPC length-prefixed framing.
#[derive(Debug, Default, Clone, Copy)]
pub struct FrameCounter {
    /// Bytes of the current prefix seen so far (0..5).
    prefix_seen: u8,
    /// The length being assembled from the prefix.
    length: u32,
    /// Payload bytes of the current message not yet seen.
    payload_left: u64,
    /// The compressed flag of the prefix being assembled.
    compressed: bool,
    /// The length its prefix gave the message being received.
    message_len: u32,
}

impl FrameCounter {
    /// Whether a message has begun and not yet ended: part of its prefix or
    /// of its payload is still to come.
    pub fn within_message(&self) -> bool {
        self.prefix_seen > 0 || self.payload_left > 0
    }

    /// The length of the message whose payload is being received; `None`
    /// between messages and inside a prefix.
    pub fn message_len(&self) -> Option<u32> {
        (self.payload_left > 0).then_some(self.message_len)
    }

    /// Consumes `data`; returns how many messages began in it.
    pub fn feed(&mut self, data: &[u8]) -> u64 {
        let mut started = 0;
        self.feed_each(data, |_| started += 1);
        started
    }

    /// Consumes `data`, calling `started` with the compressed flag of each
    /// message whose prefix ends in it.
    pub fn feed_each(&mut self, mut data: &[u8], mut started: impl FnMut(bool)) {
        while !data.is_empty() {
            if self.payload_left > 0 {
                let skip = usize::try_from(self.payload_left).unwrap_or(usize::MAX).min(data.len());
                self.payload_left -= skip as u64;
                data = &data[skip..];
                continue;
            }
            // A whole prefix at hand (the usual case): read it at once.
            if self.prefix_seen == 0
                && let Some((prefix, rest)) = data.split_first_chunk::<PREFIX_LEN>()
            {
                let (flags, len) = decode_prefix(*prefix);
                started(flags != 0);
                self.payload_left = u64::from(len);
                self.message_len = len;
                data = rest;
                continue;
            }
            let byte = data[0];
            data = &data[1..];
            if self.prefix_seen == 0 {
                self.compressed = byte != 0;
            } else {
                // Bytes 1..=4 of the prefix are the length; byte 0 is the compressed flag.
                self.length = (self.length << 8) | u32::from(byte);
            }
            self.prefix_seen += 1;
            if self.prefix_seen == 5 {
                started(self.compressed);
                self.message_len = self.length;
                self.payload_left = u64::from(self.length);
                self.prefix_seen = 0;
                self.length = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = prefix(false, payload.len() as u32).to_vec();
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn encodes_flags_then_a_big_endian_length() {
        assert_eq!(encode(0, b""), [0, 0, 0, 0, 0]);
        assert_eq!(encode(COMPRESSED, b"ab"), [1, 0, 0, 0, 2, b'a', b'b']);
        assert_eq!(encode(0b10, &[7; 258])[..PREFIX_LEN], [2, 0, 0, 1, 2]);
        assert_eq!(prefix(true, 0x0102_0304), [1, 1, 2, 3, 4]);
        assert_eq!(prefix(false, u32::MAX), [0, 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn decodes_what_it_encodes() {
        assert_eq!(decode_prefix([0, 0, 0, 0, 0]), (0, 0));
        assert_eq!(decode_prefix([0x80, 1, 2, 3, 4]), (0x80, 0x0102_0304));
        assert_eq!(decode_prefix([1, 0xff, 0xff, 0xff, 0xff]), (1, u32::MAX));
        let message = encode(0b10, &[7; 300]);
        let prefix = *message.first_chunk::<PREFIX_LEN>().unwrap();
        assert_eq!(decode_prefix(prefix), (0b10, 300));
    }

    #[test]
    fn splits_whole_messages_only() {
        let mut data = frame(b"hello");
        data.extend(prefix(true, 3));
        data.extend(b"ab");
        let (first, rest) = split(&data).expect("a whole message");
        assert_eq!(first, Message { compressed: false, flags: 0, payload: b"hello" });
        assert_eq!(rest.len(), 7);
        assert_eq!(split(rest), None);
        assert_eq!(split(&data[..4]), None);
    }

    #[test]
    fn counts_whole_frames_in_one_chunk() {
        let mut data = frame(b"hello");
        data.extend(frame(b""));
        data.extend(frame(&[7; 300]));
        assert_eq!(FrameCounter::default().feed(&data), 3);
    }

    #[test]
    fn counts_frames_split_at_every_byte() {
        let mut data = frame(&[1; 70_000]);
        data.extend(frame(b"x"));
        let mut counter = FrameCounter::default();
        let total: u64 = data.iter().map(|byte| counter.feed(std::slice::from_ref(byte))).sum();
        assert_eq!(total, 2);
    }

    #[test]
    fn reports_each_compressed_flag_however_the_bytes_are_cut() {
        let mut data = frame(b"plain");
        data.extend(prefix(true, 2));
        data.extend(b"zz");
        data.extend(frame(b""));
        let mut whole = Vec::new();
        FrameCounter::default().feed_each(&data, |compressed| whole.push(compressed));
        assert_eq!(whole, [false, true, false]);
        let mut counter = FrameCounter::default();
        let mut bytewise = Vec::new();
        for byte in &data {
            counter.feed_each(std::slice::from_ref(byte), |compressed| bytewise.push(compressed));
        }
        assert_eq!(bytewise, whole);
    }
}
