//! The TLS flags, and the rustls configuration they name (certificates and
//! keys read at start and on every reload, with errors that name the flag
//! and the file).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

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
    /// The files TLS is read from, or `None` when TLS is off.
    pub(crate) fn files(&self) -> Option<TlsFiles> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return None;
        };
        Some(TlsFiles { cert: cert.clone(), key: key.clone(), client_ca: self.tls_client_ca.clone() })
    }
}

/// The certificate chain, its key and the client CA, by path: read at start
/// and again on every reload, so each read checks everything a handshake
/// would need and names the flag and the file of what is wrong.
#[derive(Debug, Clone)]
pub(crate) struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
}

/// A rustls configuration read from [`TlsFiles`], with its serving certificate.
#[derive(Debug)]
pub(crate) struct TlsMaterial {
    /// Everything a handshake needs; ALPN is the transport's to set.
    pub(crate) config: ServerConfig,
    /// The first certificate of the chain: the one clients see.
    pub(crate) certificate: CertificateInfo,
}

/// What operators ask of the serving certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertificateInfo {
    /// Its `notAfter`, in seconds since the Unix epoch.
    pub(crate) not_after: i64,
    /// Its serial number, as colon-separated hex bytes.
    pub(crate) serial: String,
}

impl TlsFiles {
    /// Every file read, for the reload to watch.
    pub(crate) fn paths(&self) -> impl Iterator<Item = &Path> {
        [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .map(PathBuf::as_path)
    }

    /// Reads the files into a rustls configuration; fails on an unreadable
    /// file, invalid PEM, a key that does not match the certificate or a CA
    /// that cannot verify clients.
    pub(crate) fn load(&self) -> anyhow::Result<TlsMaterial> {
        let chain = CertificateDer::pem_slice_iter(&read_certs(&self.cert, "--tls-cert")?)
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("--tls-cert {}: invalid PEM", self.cert.display()))?;
        let certificate = certificate_info(&chain[0])
            .with_context(|| format!("--tls-cert {}: invalid certificate", self.cert.display()))?;
        let key = read_key(&self.key)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?;
        let builder = match &self.client_ca {
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
        let config = builder.with_single_cert(chain, key).map_err(|error| match error {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => anyhow::anyhow!(
                "--tls-key {} is not the key of the certificate in --tls-cert {}",
                self.key.display(),
                self.cert.display()
            ),
            error => anyhow::Error::new(error).context("invalid TLS certificate or key"),
        })?;
        Ok(TlsMaterial { config, certificate })
    }
}

/// The expiry and serial of `cert`; fails when it is not an X.509 certificate.
fn certificate_info(cert: &CertificateDer<'_>) -> anyhow::Result<CertificateInfo> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)?;
    Ok(CertificateInfo {
        not_after: parsed.validity().not_after.timestamp(),
        serial: parsed.raw_serial_as_string(),
    })
}

fn read(path: &Path, flag: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {flag} {}", path.display()))
}

/// Reads a PEM file that must hold at least one certificate, so that a bad file
/// gets an error naming it rather than a failed handshake later.
fn read_certs(path: &Path, flag: &str) -> anyhow::Result<Vec<u8>> {
    let pem = read(path, flag)?;
    let count = CertificateDer::pem_slice_iter(&pem)
        .try_fold(0, |count, cert| cert.map(|_| count + 1))
        .with_context(|| format!("{flag} {}: invalid PEM", path.display()))?;
    anyhow::ensure!(count > 0, "{flag} {}: no PEM certificate in it", path.display());
    Ok(pem)
}

/// Reads the PEM file of the private key.
fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
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

    fn load(cert: &str, key: &str) -> anyhow::Result<TlsMaterial> {
        args(cert, key).files().expect("TLS is on").load()
    }

    /// A fresh directory for one test's files, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("connect-tls-unit-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            Self(dir)
        }

        fn write(&self, name: &str, text: &str) -> String {
            let path = self.0.join(name);
            std::fs::write(&path, text).expect("write");
            path.to_str().expect("utf-8").to_owned()
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
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
        assert!(off.files().is_none());
    }

    #[test]
    fn clear_errors_for_bad_files() {
        let dir = Dir::new("bad");
        let junk = dir.write("junk.pem", "not pem\n");

        let missing = load("/nonexistent/cert.pem", &junk).unwrap_err();
        assert_eq!(missing.to_string(), "cannot read --tls-cert /nonexistent/cert.pem");
        let no_cert = load(&junk, &junk).unwrap_err();
        assert_eq!(no_cert.to_string(), format!("--tls-cert {junk}: no PEM certificate in it"));
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let dir = Dir::new("mismatch");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let other = rcgen::KeyPair::generate().expect("key");
        let cert = dir.write("cert.pem", &cert.pem());
        let other = dir.write("other.key", &other.serialize_pem());
        let error = load(&cert, &other).unwrap_err();
        assert_eq!(
            format!("{error:#}"),
            format!("--tls-key {other} is not the key of the certificate in --tls-cert {cert}")
        );
    }

    #[test]
    fn reads_the_serving_certificates_expiry_and_serial() {
        let dir = Dir::new("info");
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x0a, 0x0b, 0x0c]));
        params.not_after = rcgen::date_time_ymd(2030, 1, 2);
        let cert = dir.write("cert.pem", &params.self_signed(&key).expect("cert").pem());
        let key = dir.write("cert.key", &key.serialize_pem());
        let material = load(&cert, &key).expect("a valid certificate and key");
        // 2030-01-02T00:00:00Z
        let expected = CertificateInfo { not_after: 1_893_542_400, serial: "0a:0b:0c".to_owned() };
        assert_eq!(material.certificate, expected);
    }
}
