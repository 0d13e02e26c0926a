//! One socket wrapper for every per-connection rule that watches reads and
//! writes: each rule is a small [`Tap`] with one job (a timeout, the age
//! limit, busy polling), and [`Tapped`] runs them around the socket.
//!
//! Why one wrapper and not one per rule: each wrapper would repeat the ten
//! methods of `AsyncRead` + `AsyncWrite`; a tap says only what it adds.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A rule that watches a connection's socket.
pub(crate) trait Tap {
    /// Before every read; an error fails the read (and hyper closes the connection).
    fn before_read(&mut self, _cx: &mut Context<'_>) -> io::Result<()> {
        Ok(())
    }

    /// After a read that returned `bytes` bytes (0 at the end of the stream).
    fn after_read(&mut self, _bytes: usize) {}

    /// After a read that found nothing to read: arm a wake-up, or fail the read.
    /// hyper always has a read pending on a live connection, so this is where
    /// an idle connection is looked at.
    fn read_pending(&mut self, _cx: &mut Context<'_>) -> io::Result<()> {
        Ok(())
    }

    /// Before every write and flush; an error fails it.
    fn before_write(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Two taps, the first one first.
impl<A: Tap, B: Tap> Tap for (A, B) {
    fn before_read(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        self.0.before_read(cx)?;
        self.1.before_read(cx)
    }

    fn after_read(&mut self, bytes: usize) {
        self.0.after_read(bytes);
        self.1.after_read(bytes);
    }

    fn read_pending(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        self.0.read_pending(cx)?;
        self.1.read_pending(cx)
    }

    fn before_write(&self) -> io::Result<()> {
        self.0.before_write()?;
        self.1.before_write()
    }
}

/// A tap that may be off.
impl<T: Tap> Tap for Option<T> {
    fn before_read(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        self.as_mut().map_or(Ok(()), |tap| tap.before_read(cx))
    }

    fn after_read(&mut self, bytes: usize) {
        if let Some(tap) = self {
            tap.after_read(bytes);
        }
    }

    fn read_pending(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        self.as_mut().map_or(Ok(()), |tap| tap.read_pending(cx))
    }

    fn before_write(&self) -> io::Result<()> {
        self.as_ref().map_or(Ok(()), Tap::before_write)
    }
}

/// A socket with a [`Tap`] around it.
#[derive(Debug)]
pub(crate) struct Tapped<IO, T> {
    io: IO,
    tap: T,
}

impl<IO, T> Tapped<IO, T> {
    /// `io`, watched by `tap`.
    pub(crate) fn new(io: IO, tap: T) -> Self {
        Self { io, tap }
    }
}

impl<IO: AsyncRead + Unpin, T: Tap + Unpin> AsyncRead for Tapped<IO, T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.tap.before_read(cx)?;
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.tap.after_read(buf.filled().len() - before);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => match this.tap.read_pending(cx) {
                Ok(()) => Poll::Pending,
                Err(error) => Poll::Ready(Err(error)),
            },
        }
    }
}

impl<IO: AsyncWrite + Unpin, T: Tap + Unpin> AsyncWrite for Tapped<IO, T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.tap.before_write()?;
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.tap.before_write()?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.tap.before_write()?;
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// Counts the bytes read and refuses writes once it has seen `limit`.
    #[derive(Debug, Default)]
    struct Counting {
        read: usize,
        limit: usize,
    }

    impl Tap for Counting {
        fn after_read(&mut self, bytes: usize) {
            self.read += bytes;
        }

        fn before_write(&self) -> io::Result<()> {
            if self.read >= self.limit { Err(io::Error::other("over the limit")) } else { Ok(()) }
        }
    }

    #[tokio::test]
    async fn taps_see_reads_and_can_fail_writes() {
        let (client, server) = tokio::io::duplex(64);
        let mut tapped = Tapped::new(server, (Counting { read: 0, limit: 3 }, None::<Counting>));
        let mut client = client;
        client.write_all(b"ab").await.unwrap();
        let mut buf = [0; 2];
        tapped.read_exact(&mut buf).await.unwrap();
        assert_eq!(tapped.tap.0.read, 2);
        tapped.write_all(b"ok").await.unwrap();
        client.write_all(b"c").await.unwrap();
        tapped.read_exact(&mut buf[..1]).await.unwrap();
        let error = tapped.write_all(b"no").await.unwrap_err();
        assert_eq!(error.to_string(), "over the limit");
    }
}
