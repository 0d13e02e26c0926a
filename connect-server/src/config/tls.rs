//! The TLS flags. Building the acceptor from them is the transport's job
//! (`transport::tls`).

use std::{path::PathBuf, time::Duration};

use clap::Args;

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
