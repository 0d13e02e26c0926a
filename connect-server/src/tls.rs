//! TLS and mutual TLS (rustls, through tonic) for the server.
//!
//! tonic runs each handshake in its own task under the configured timeout,
//! so a slow or silent client neither blocks the accept loop nor holds a
//! socket for long.

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::Args;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

/// TLS flags; without `--tls-cert` the server speaks plaintext HTTP/2.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "TLS")]
pub struct TlsArgs {
    /// Server certificate chain (PEM); turns TLS on. Needs `--tls-key`.
    #[arg(long, env = "CONNECT_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// Private key of the server certificate (PEM).
    #[arg(long, env = "CONNECT_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// CA certificates (PEM) that client certificates must chain to; makes client certificates required (mTLS).
    #[arg(long, env = "CONNECT_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// Most time a client may take to complete the TLS handshake.
    #[arg(long, env = "CONNECT_TLS_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub tls_handshake_timeout: Duration,
}

impl TlsArgs {
    /// The tonic TLS configuration, or `None` when TLS is off; fails on unreadable files.
    pub fn server_config(&self) -> anyhow::Result<Option<ServerTlsConfig>> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let identity = Identity::from_pem(read(cert, "--tls-cert")?, read(key, "--tls-key")?);
        let mut config = ServerTlsConfig::new().identity(identity).timeout(self.tls_handshake_timeout);
        if let Some(ca) = &self.tls_client_ca {
            config = config.client_ca_root(Certificate::from_pem(read(ca, "--tls-client-ca")?));
        }
        Ok(Some(config))
    }

    /// Turns TLS on for `server` when configured.
    pub fn apply<L>(&self, server: Server<L>) -> anyhow::Result<Server<L>> {
        match self.server_config()? {
            Some(config) => server.tls_config(config).context("invalid TLS certificate or key"),
            None => Ok(server),
        }
    }
}

fn read(path: &PathBuf, flag: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {flag} {}", path.display()))
}
