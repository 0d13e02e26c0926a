//! Where connections come from: a TCP listener, or an in-memory one for
//! tests. The server is generic over [`Listener`], so everything above the
//! socket (limits, TLS, HTTP/2, the calls) runs the same on both.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::{
    io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf},
    net::TcpStream,
    sync::mpsc,
};

/// How long to pause accepting after an error such as "too many open files",
/// so the loop does not spin while the process is out of descriptors.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Bytes of each in-memory connection's pipe, each way.
const MEMORY_PIPE_BYTES: usize = 256 * 1024;

/// Pending connections each TCP listener queues, as `tokio::net::TcpListener::bind` does.
const BACKLOG: i32 = 1024;

/// A non-blocking TCP listener on `addr`; with `reuse_port`, others may bind
/// the same address (`SO_REUSEPORT`, one per worker) and the kernel spreads
/// new connections over them. Without it, a taken port fails loudly.
pub(crate) fn bind_tcp(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As tokio's bind: allows a quick restart while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// A source of connections that one worker serves. It is handed to the
/// worker's thread and [`bind`](Self::bind)s there, because a socket belongs
/// to the runtime it is registered with.
pub trait Listener: Send + 'static {
    /// The connections it accepts.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// It, ready to accept on the current runtime.
    type Bound: Accept<Io = Self::Io>;

    /// The local address (it names the server in `x-served-by`).
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// Registers with the current runtime.
    fn bind(self) -> io::Result<Self::Bound>;
}

/// A bound listener.
pub trait Accept {
    /// The connections it accepts.
    type Io;

    /// The next connection and its peer's address. Errors that concern the
    /// listener are handled inside (logged, retried after a pause), so this
    /// only fails when the listener cannot go on.
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Io, Option<SocketAddr>)>>;
}

impl Listener for std::net::TcpListener {
    type Io = TcpIo;
    type Bound = tokio::net::TcpListener;

    fn local_addr(&self) -> io::Result<SocketAddr> {
        std::net::TcpListener::local_addr(self)
    }

    fn bind(self) -> io::Result<Self::Bound> {
        self.set_nonblocking(true)?;
        tokio::net::TcpListener::from_std(self)
    }
}

impl Listener for tokio::net::TcpListener {
    type Io = TcpIo;
    type Bound = tokio::net::TcpListener;

    fn local_addr(&self) -> io::Result<SocketAddr> {
        tokio::net::TcpListener::local_addr(self)
    }

    fn bind(self) -> io::Result<Self::Bound> {
        // Off the runtime it was made on, onto the worker's.
        tokio::net::TcpListener::from_std(self.into_std()?)
    }
}

impl Accept for tokio::net::TcpListener {
    type Io = TcpIo;

    async fn accept(&mut self) -> io::Result<(TcpIo, Option<SocketAddr>)> {
        loop {
            match tokio::net::TcpListener::accept(self).await {
                Ok((tcp, peer)) => {
                    // Nagle off: small gRPC frames must not wait for ACKs. A socket that
                    // refuses is served anyway, only slower.
                    let _ = tcp.set_nodelay(true);
                    return Ok((TcpIo(tcp), Some(peer)));
                }
                Err(error) if is_per_connection(&error) => {
                    tracing::debug!(%error, "accept: connection failed before it was accepted");
                }
                Err(error) => {
                    tracing::warn!(%error, "accept failed; pausing before the next accept");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            }
        }
    }
}

/// Errors that concern only the connection being accepted, not the listener.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// An accepted TCP connection, with the server's write policy.
#[derive(Debug)]
pub struct TcpIo(TcpStream);

impl AsyncRead for TcpIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpIo {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    /// `false`, although the socket could: h2 copies DATA frames of up to 1 KiB
    /// into its write buffer when writes are not vectored (256 bytes when they
    /// are), and a frame it does not copy ends the batch. Copying lets one write
    /// carry the short responses of many streams instead of a `writev` per
    /// stream (the README's Performance section has the figures).
    fn is_write_vectored(&self) -> bool {
        false
    }
}

/// A listener whose connections are in-memory pipes, made by its [`MemoryConnector`].
#[derive(Debug)]
pub struct MemoryListener {
    incoming: mpsc::UnboundedReceiver<DuplexStream>,
}

/// Opens connections to a [`MemoryListener`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct MemoryConnector {
    outgoing: mpsc::UnboundedSender<DuplexStream>,
}

impl MemoryListener {
    /// A listener and the connector that reaches it.
    pub fn new() -> (Self, MemoryConnector) {
        let (outgoing, incoming) = mpsc::unbounded_channel();
        (Self { incoming }, MemoryConnector { outgoing })
    }
}

impl MemoryConnector {
    /// A new connection: the client's end of the pipe.
    pub fn connect(&self) -> io::Result<DuplexStream> {
        let (client, server) = tokio::io::duplex(MEMORY_PIPE_BYTES);
        self.outgoing.send(server).map_err(|_| {
            io::Error::new(io::ErrorKind::ConnectionRefused, "the in-memory server has stopped")
        })?;
        Ok(client)
    }
}

impl Listener for MemoryListener {
    type Io = DuplexStream;
    type Bound = Self;

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    fn bind(self) -> io::Result<Self> {
        Ok(self)
    }
}

impl Accept for MemoryListener {
    type Io = DuplexStream;

    async fn accept(&mut self) -> io::Result<(DuplexStream, Option<SocketAddr>)> {
        match self.incoming.recv().await {
            Some(io) => Ok((io, None)),
            // Every connector is gone: no connection can come any more.
            None => std::future::pending().await,
        }
    }
}
