//! The hard end of a connection's life: `--max-connection-age` plus
//! `--max-connection-age-grace` after it was accepted, its socket fails.
//!
//! The GOAWAY at the age itself is sent by [`crate::serve`], after which calls
//! finish; this wrapper is the backstop for calls that do not finish in the
//! grace. (tonic's own `max_connection_age_grace` could not be used when tonic
//! served the connections: in 0.14.9 it replaced the graceful GOAWAY by a
//! silent close at age + grace.)

use std::{
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_stream::{Stream, StreamExt as _};
use tonic::transport::server::Connected;

use crate::wake_at::WakeAt;

/// A connection that fails every read and write once its lifetime is over.
#[derive(Debug)]
pub(crate) struct AgedIo<IO> {
    io: IO,
    end_of_life: WakeAt,
}

impl<IO> AgedIo<IO> {
    /// Wraps `io`, which may live for `lifetime` from now.
    pub(crate) fn new(io: IO, lifetime: Duration) -> Self {
        Self { io, end_of_life: WakeAt::new(tokio::time::Instant::now() + lifetime) }
    }

    /// Errors once the lifetime is over; otherwise arranges a wake-up for when it is.
    /// Reads call this: a live HTTP/2 connection always has a read pending, so the
    /// wake-up reaches it even when it is idle.
    fn check_and_wake(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.end_of_life.poll_expired(cx) { Err(expired()) } else { Ok(()) }
    }

    /// Errors once the lifetime is over; writes call this cheaper check.
    fn check(&self) -> io::Result<()> {
        if self.end_of_life.is_expired() { Err(expired()) } else { Ok(()) }
    }
}

fn expired() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "max connection age grace is over")
}

impl<IO: AsyncRead + Unpin> AsyncRead for AgedIo<IO> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check_and_wake(cx)?;
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for AgedIo<IO> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
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
        this.check()?;
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl<IO: Connected> Connected for AgedIo<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

/// Wraps every connection `incoming` accepts in an [`AgedIo`] living for `lifetime`.
pub(crate) fn limit_lifetime<IO, E>(
    incoming: impl Stream<Item = Result<IO, E>>,
    lifetime: Duration,
) -> impl Stream<Item = Result<AgedIo<IO>, E>> {
    incoming.map(move |accepted| accepted.map(|io| AgedIo::new(io, lifetime)))
}
