//! TLS and mutual TLS (rustls, through tonic) for the server.
//!
//! tonic runs each handshake in its own task under the configured timeout,
//! so a slow or silent client neither blocks the accept loop nor holds a
//! socket for long.

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::Args;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
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
        let identity = Identity::from_pem(read_certs(cert, "--tls-cert")?, read_key(key)?);
        let mut config = ServerTlsConfig::new().identity(identity).timeout(self.tls_handshake_timeout);
        if let Some(ca) = &self.tls_client_ca {
            config = config.client_ca_root(Certificate::from_pem(read_certs(ca, "--tls-client-ca")?));
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

/// Reads a PEM file that must hold at least one certificate; checked here because
/// tonic only says "transport error" about a bad one.
fn read_certs(path: &PathBuf, flag: &str) -> anyhow::Result<Vec<u8>> {
    let pem = read(path, flag)?;
    let count = CertificateDer::pem_slice_iter(&pem)
        .try_fold(0, |count, cert| cert.map(|_| count + 1))
        .with_context(|| format!("{flag} {}: invalid PEM", path.display()))?;
    anyhow::ensure!(count > 0, "{flag} {}: no PEM certificate in it", path.display());
    Ok(pem)
}

/// Reads a PEM file that must hold a private key.
fn read_key(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let pem = read(path, "--tls-key")?;
    PrivateKeyDer::from_pem_slice(&pem)
        .with_context(|| format!("--tls-key {}: no PEM private key in it", path.display()))?;
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(cert: &str, key: &str) -> TlsArgs {
        TlsArgs {
            tls_cert: Some(cert.into()),
            tls_key: Some(key.into()),
            tls_client_ca: None,
            tls_handshake_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn plaintext_without_cert() {
        let off = TlsArgs {
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            tls_handshake_timeout: Duration::ZERO,
        };
        assert!(off.server_config().expect("no files to read").is_none());
    }

    #[test]
    fn clear_errors_for_bad_files() {
        let dir = std::env::temp_dir().join(format!("connect-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not pem\n").expect("write");
        let junk = junk.to_str().expect("utf-8");

        let missing = args("/nonexistent/cert.pem", junk).server_config().unwrap_err();
        assert_eq!(missing.to_string(), "cannot read --tls-cert /nonexistent/cert.pem");
        let no_cert = args(junk, junk).server_config().unwrap_err();
        assert_eq!(no_cert.to_string(), format!("--tls-cert {junk}: no PEM certificate in it"));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
