//! TLS and mutual TLS (rustls): the handshake of each connection. (The
//! rustls configuration is built from the flags by `config`.)
//!
//! The configuration is held in an [`ArcSwap`]: a reload replaces it whole
//! (certificate, key and client CA together) and each handshake takes the
//! one current when it starts, so a connection keeps the configuration it
//! was accepted with.
//!
//! Each handshake runs in its connection's own task under
//! `--tls-handshake-timeout`, so a slow or silent client neither blocks the
//! accept loop nor holds a socket for long. ALPN offers `h2`, and
//! `http/1.1` when a web protocol is on.

use std::{sync::Arc, time::Duration};

use arc_swap::ArcSwap;
use prometheus::IntCounterVec;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{TlsAcceptor, rustls::ServerConfig, server::TlsStream};

use super::tls_refusal::{Refusal, Refusals};

/// What accepting a TLS connection needs: the rustls configuration and the
/// handshake timeout. Clones share the configuration.
#[derive(Clone)]
pub(crate) struct Tls {
    /// The configuration new handshakes use.
    config: Arc<ArcSwap<ServerConfig>>,
    /// The ALPN protocols, set on every configuration stored.
    alpn: Arc<[Vec<u8>]>,
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
        let mut alpn = vec![b"h2".to_vec()];
        if http1 {
            alpn.push(b"http/1.1".to_vec());
        }
        config.alpn_protocols = alpn.clone();
        Self {
            config: Arc::new(ArcSwap::from_pointee(config)),
            alpn: alpn.into(),
            handshake_timeout,
            refusals: Refusals::counting_into(refusals),
        }
    }

    /// Makes `config` (with this server's ALPN) the one of every handshake
    /// that starts from now on, on every clone.
    pub(crate) fn replace(&self, mut config: ServerConfig) {
        config.alpn_protocols = self.alpn.to_vec();
        self.config.store(Arc::new(config));
    }

    /// Runs the server side of the handshake with `peer` on `io` under its
    /// timeout; `None` (counted and logged) when it fails or times out.
    pub(crate) async fn handshake<IO>(&self, io: IO, peer: &str) -> Option<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let acceptor = TlsAcceptor::from(self.config.load_full());
        match tokio::time::timeout(self.handshake_timeout, acceptor.accept(io)).await {
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
