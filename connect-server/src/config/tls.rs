//! The TLS flags, and the rustls configuration they name (certificates and
//! keys read once, with errors that name the flag and the file).

use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use clap::Args;
use tokio_rustls::rustls::{
    self, RootCertStore, ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::WebPkiClientVerifier,
};

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
    /// The rustls configuration, or `None` when TLS is off; fails on unreadable or invalid files.
    pub(crate) fn server_config(&self) -> anyhow::Result<Option<ServerConfig>> {
        let args = self;
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
        let config = builder.with_single_cert(chain, key).context("invalid TLS certificate or key")?;
        Ok(Some(config))
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
