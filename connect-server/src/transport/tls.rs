//! TLS and mutual TLS (rustls): the acceptor built once from the flags, and
//! the handshake of each connection.
//!
//! Each handshake runs in its connection's own task under
//! `--tls-handshake-timeout`, so a slow or silent client neither blocks the
//! accept loop nor holds a socket for long. ALPN offers `h2` only.

use std::{path::PathBuf, sync::Arc, time::Duration};

use crate::config::TlsArgs;

use anyhow::Context as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        self, RootCertStore, ServerConfig,
        pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
        server::WebPkiClientVerifier,
    },
    server::TlsStream,
};
/// What accepting a TLS connection needs: the rustls acceptor and the handshake timeout.
#[derive(Clone)]
pub(crate) struct Tls {
    /// Runs the server side of a handshake.
    pub(crate) acceptor: TlsAcceptor,
    /// Most time a handshake may take.
    pub(crate) handshake_timeout: Duration,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("handshake_timeout", &self.handshake_timeout).finish_non_exhaustive()
    }
}

impl Tls {
    /// The TLS acceptor for `args`, or `None` when TLS is off; fails on unreadable or invalid files.
    pub(crate) fn from_args(args: &TlsArgs) -> anyhow::Result<Option<Self>> {
        let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
            return Ok(None);
        };
        let chain = CertificateDer::pem_slice_iter(&read_certs(cert, "--tls-cert")?)
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("--tls-cert {}: invalid PEM", cert.display()))?;
        let key = read_key(key)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?;
        let builder = match &args.tls_client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(&read_certs(ca, "--tls-client-ca")?) {
                    roots
                        .add(cert.context("--tls-client-ca: invalid PEM")?)
                        .context("--tls-client-ca: invalid CA")?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .context("--tls-client-ca: cannot verify clients with it")?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(chain, key).context("invalid TLS certificate or key")?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Some(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            handshake_timeout: args.tls_handshake_timeout,
        }))
    }
}

impl Tls {
    /// Runs the server side of the handshake on `io` under its timeout; `None`
    /// (logged) when it fails or times out.
    pub(crate) async fn handshake<IO>(&self, io: IO) -> Option<TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        match tokio::time::timeout(self.handshake_timeout, self.acceptor.accept(io)).await {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(error)) => {
                tracing::debug!(%error, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!("TLS handshake timed out");
                None
            }
        }
    }
}

fn read(path: &PathBuf, flag: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {flag} {}", path.display()))
}

/// Reads a PEM file that must hold at least one certificate, so that a bad file
/// gets an error naming it rather than a failed handshake later.
fn read_certs(path: &PathBuf, flag: &str) -> anyhow::Result<Vec<u8>> {
    let pem = read(path, flag)?;
    let count = CertificateDer::pem_slice_iter(&pem)
        .try_fold(0, |count, cert| cert.map(|_| count + 1))
        .with_context(|| format!("{flag} {}: invalid PEM", path.display()))?;
    anyhow::ensure!(count > 0, "{flag} {}: no PEM certificate in it", path.display());
    Ok(pem)
}

/// Reads the PEM file of the private key.
fn read_key(path: &PathBuf) -> anyhow::Result<PrivateKeyDer<'static>> {
    let pem = read(path, "--tls-key")?;
    PrivateKeyDer::from_pem_slice(&pem)
        .with_context(|| format!("--tls-key {}: no PEM private key in it", path.display()))
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
        assert!(Tls::from_args(&off).expect("no files to read").is_none());
    }

    #[test]
    fn clear_errors_for_bad_files() {
        let dir = std::env::temp_dir().join(format!("connect-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not pem\n").expect("write");
        let junk = junk.to_str().expect("utf-8");

        let missing = Tls::from_args(&args("/nonexistent/cert.pem", junk)).unwrap_err();
        assert_eq!(missing.to_string(), "cannot read --tls-cert /nonexistent/cert.pem");
        let no_cert = Tls::from_args(&args(junk, junk)).unwrap_err();
        assert_eq!(no_cert.to_string(), format!("--tls-cert {junk}: no PEM certificate in it"));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
