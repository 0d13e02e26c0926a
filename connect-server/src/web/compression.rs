//! The two compressions the web protocols may name (`gzip`, `zstd`), the
//! same two the gRPC service accepts. Messages are compressed and
//! decompressed here only where a JSON message must be read or written;
//! binary messages keep their compression and go to tonic as they came.

use std::io::Read;

use tonic::Status;

/// A compression a client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Gzip,
    Zstd,
}

impl Encoding {
    /// The encoding a `content-encoding`-like header names; `None` for `identity`.
    pub(crate) fn parse(name: &str) -> Result<Option<Self>, Status> {
        match name.trim() {
            "" | "identity" => Ok(None),
            "gzip" => Ok(Some(Self::Gzip)),
            "zstd" => Ok(Some(Self::Zstd)),
            other => Err(Status::unimplemented(format!(
                "unsupported compression {other:?}: use gzip, zstd or identity"
            ))),
        }
    }

    /// The first encoding of an `accept-encoding`-like list that the server speaks.
    pub(crate) fn first_accepted(list: &str) -> Option<Self> {
        list.split(',')
            .map(|item| item.split(';').next().unwrap_or_default().trim())
            .find_map(|name| Self::parse(name).ok().flatten())
    }

    /// Its name on the wire.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
        }
    }

    /// `data` decompressed, refusing more than `limit` bytes of output (a small
    /// compressed message must not become a large allocation).
    pub(crate) fn decompress(self, data: &[u8], limit: usize) -> Result<Vec<u8>, Status> {
        let mut out = Vec::new();
        let cap = limit as u64 + 1;
        let read = match self {
            Self::Gzip => flate2::read::GzDecoder::new(data).take(cap).read_to_end(&mut out),
            Self::Zstd => {
                zstd::stream::read::Decoder::new(data).and_then(|d| d.take(cap).read_to_end(&mut out))
            }
        };
        read.map_err(|error| {
            Status::invalid_argument(format!("cannot decompress the {} message: {error}", self.name()))
        })?;
        if out.len() > limit {
            return Err(too_large(limit));
        }
        Ok(out)
    }

    /// `data` compressed.
    pub(crate) fn compress(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Gzip => {
                let mut encoder = flate2::read::GzEncoder::new(data, flate2::Compression::fast());
                let mut out = Vec::new();
                encoder.read_to_end(&mut out).expect("compressing a slice cannot fail");
                out
            }
            Self::Zstd => zstd::bulk::compress(data, 0).expect("compressing a slice cannot fail"),
        }
    }
}

/// The error for a message over `limit` bytes (as connect-go answers it).
pub(crate) fn too_large(limit: usize) -> Status {
    Status::resource_exhausted(format!("message is larger than the limit of {limit} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_bounds_the_output() {
        let data = vec![b'a'; 10_000];
        for encoding in [Encoding::Gzip, Encoding::Zstd] {
            let packed = encoding.compress(&data);
            assert!(packed.len() < 1_000, "{encoding:?}");
            assert_eq!(encoding.decompress(&packed, 10_000).unwrap(), data);
            let refused = encoding.decompress(&packed, 9_999).unwrap_err();
            assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
            assert_eq!(refused.message(), "message is larger than the limit of 9999 bytes");
        }
    }

    #[test]
    fn names_what_it_does_not_speak() {
        assert_eq!(
            Encoding::parse("br").unwrap_err().message(),
            "unsupported compression \"br\": use gzip, zstd or identity"
        );
        assert_eq!(Encoding::first_accepted("br, zstd;q=0.5, gzip"), Some(Encoding::Zstd));
        assert_eq!(Encoding::first_accepted("br"), None);
    }
}
