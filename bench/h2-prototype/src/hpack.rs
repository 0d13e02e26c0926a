//! The HPACK decoder, from a crate; which one, and why.
//!
//! The candidates on crates.io: `hpack` 0.3 (2016, unmaintained), its forks
//! `fluke-hpack` 0.3 and `loona-hpack` 0.4 (bearcove, kept up to 2024), and
//! `httlib-hpack` 0.1 (2021). h2's own decoder is private to h2.
//!
//! loona-hpack has the better API (a callback with borrowed fields, a cap on
//! the table size the peer may ask for), but its Huffman decoder, inherited
//! from `hpack`, builds a `HashMap` of the 257 codes for every Huffman-coded
//! string. nghttp2 (h2load) never indexes `:path` or `content-length`, so every
//! request carries a Huffman literal: under callgrind the prototype spent about
//! 250,000 instructions per call with it, 85% in that map, five times all of
//! connect-server. httlib-hpack decodes Huffman with flat lookup tables; it
//! copies the block and allocates each name and value, which costs a few
//! thousand instructions, and it is what the default build uses.
//! `--features loona` builds the other, to check that figure.

/// One connection's HPACK decoder (4 KiB table, the default we advertise).
pub(crate) struct Decoder {
    #[cfg(not(feature = "loona"))]
    inner: httlib_hpack::Decoder<'static>,
    /// httlib-hpack consumes its input from a `Vec`: the block is copied here, reused.
    #[cfg(not(feature = "loona"))]
    block: Vec<u8>,
    /// And writes owned fields here; 32 at a time (its batch is this capacity).
    #[cfg(not(feature = "loona"))]
    fields: Vec<(Vec<u8>, Vec<u8>, u8)>,
    #[cfg(feature = "loona")]
    inner: loona_hpack::Decoder<'static>,
}

impl Decoder {
    pub(crate) fn new() -> Self {
        #[cfg(not(feature = "loona"))]
        return Decoder {
            inner: httlib_hpack::Decoder::with_dynamic_size(4096),
            block: Vec::with_capacity(1024),
            fields: Vec::with_capacity(32),
        };
        #[cfg(feature = "loona")]
        {
            let mut inner = loona_hpack::Decoder::new();
            inner.set_max_allowed_table_size(4096);
            Decoder { inner }
        }
    }

    /// Decodes one whole header block, calling `each(name, value)` for every field in order.
    pub(crate) fn decode(&mut self, block: &[u8], mut each: impl FnMut(&[u8], &[u8])) -> Result<(), ()> {
        #[cfg(not(feature = "loona"))]
        {
            self.block.clear();
            self.block.extend_from_slice(block);
            while !self.block.is_empty() {
                let before = self.block.len();
                self.inner.decode_exact(&mut self.block, &mut self.fields).map_err(|_| ())?;
                for (name, value, _) in self.fields.drain(..) {
                    each(&name, &value);
                }
                if self.block.len() == before {
                    return Err(());
                }
            }
            Ok(())
        }
        #[cfg(feature = "loona")]
        self.inner.decode_with_cb(block, |name, value| each(&name, &value)).map_err(|_| ())
    }
}
