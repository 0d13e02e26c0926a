//! TLS and mutual TLS (rustls): the handshake of each connection. (The
//! rustls configuration is built from the flags by `config`.)
//!
//! Each handshake runs in its connection's own task under
//! `--tls-handshake-timeout`, so a slow or silent client neither blocks the
//! accept loop nor holds a socket for long. ALPN offers `h2`, and
//! `http/1.1` when a web protocol is on.

use std::{sync::Arc, time::Duration};

use prometheus::IntCounterVec;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{TlsAcceptor, rustls::ServerConfig, server::TlsStream};

use super::tls_refusal::{Refusal, Refusals};

/// What accepting a TLS connection needs: the rustls acceptor and the handshake timeout.
#[derive(Clone)]
pub(crate) struct Tls {
    /// Runs the server side of a handshake.
    acceptor: TlsAcceptor,
    /// Most time a handshake may take.
    handshake_timeout: Duration,
    /// Where failed handshakes are counted and logged.
    refusals: Refusals,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("handshake_timeout", &self.handshake_timeout).finish_non_exhaustive()
    }
}

impl Tls {
    /// Accepts with `config` (ALPN `h2`, and `http/1.1` when `http1`), each handshake within
    /// `handshake_timeout`, counting failed ones into `refusals` (label `reason`).
    pub(crate) fn new(
        mut config: ServerConfig,
        handshake_timeout: Duration,
        refusals: IntCounterVec,
        http1: bool,
    ) -> Self {
        config.alpn_protocols = vec![b"h2".to_vec()];
        if http1 {
            config.alpn_protocols.push(b"http/1.1".to_vec());
        }
        Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            handshake_timeout,
            refusals: Refusals::counting_into(refusals),
        }
    }

    /// Runs the server side of the handshake with `peer` on `io` under its
    /// timeout; `None` (counted and logged) when it fails or times out.
    pub(crate) async fn handshake<IO>(&self, io: IO, peer: &str) -> Option<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        match tokio::time::timeout(self.handshake_timeout, self.acceptor.accept(io)).await {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(error)) => {
                self.refusals.record(Refusal::of(&error), peer, &error);
                None
            }
            Err(_) => {
                let timeout = humantime::format_duration(self.handshake_timeout);
                self.refusals.record(Refusal::TimedOut, peer, &format_args!("no handshake within {timeout}"));
                None
            }
        }
    }
}
