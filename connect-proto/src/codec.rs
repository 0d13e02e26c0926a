//! The codec of the generated `ConnectService` server and client: prost's,
//! with buffers sized for this service's messages.
//!
//! tonic's default buffer is 8 KiB for each encoder and each decoder, taken
//! whole for every call: a response stream holds its encoder's for as long as
//! it is open, so 200,000 open server streams held 1.6 GiB of buffers for
//! messages of a few dozen bytes. A buffer grows when a message needs it, so
//! a small one costs large messages a few doublings, never a limit.

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// The first capacity of each call's encode and decode buffer.
const BUFFER_SIZE: usize = 512;

/// Encoded bytes gathered before tonic hands them on (its default).
const YIELD_THRESHOLD: usize = 32 * 1024;

/// prost encoding with 512-byte buffers (see the module docs).
#[derive(Debug, Clone)]
pub struct SmallBufferCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for SmallBufferCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

fn settings() -> BufferSettings {
    BufferSettings::new(BUFFER_SIZE, YIELD_THRESHOLD)
}

impl<T, U> Codec for SmallBufferCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(settings())
    }
}
