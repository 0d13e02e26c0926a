//! The TLS files for `https://` addresses, read when a channel is opened.

use std::path::{Path, PathBuf};

use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::error::ClientError;

/// The TLS files for `https://` addresses.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// CA certificate (PEM) that the server's certificate must chain to, instead of the system's roots.
    pub ca: Option<PathBuf>,
    /// Client certificate (PEM), for mTLS.
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of the client certificate.
    pub key: Option<PathBuf>,
}

impl TlsFiles {
    fn is_empty(&self) -> bool {
        self.ca.is_none() && self.cert.is_none() && self.key.is_none()
    }

    /// The TLS settings for `addrs`: some when any is `https://`; the files
    /// without an `https://` address are a usage error.
    pub(crate) fn config_for(&self, addrs: &[String]) -> Result<Option<ClientTlsConfig>, ClientError> {
        if addrs.iter().any(|addr| addr.starts_with("https://")) {
            Ok(Some(self.config()?))
        } else if self.is_empty() {
            Ok(None)
        } else {
            Err(ClientError::Other("--ca, --cert and --key need an https:// address".into()))
        }
    }

    /// `--ca` when given; otherwise the system's roots (as rustls-native-certs
    /// finds them: the platform's store, or `SSL_CERT_FILE` / `SSL_CERT_DIR`), so a
    /// server with a publicly issued certificate needs no flag.
    fn config(&self) -> Result<ClientTlsConfig, ClientError> {
        let mut config = ClientTlsConfig::new();
        config = match &self.ca {
            Some(ca) => config.ca_certificate(Certificate::from_pem(read(ca, "--ca")?)),
            None => config.with_native_roots(),
        };
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            config = config.identity(Identity::from_pem(read(cert, "--cert")?, read(key, "--key")?));
        }
        Ok(config)
    }
}

fn read(path: &Path, flag: &str) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path)
        .map_err(|error| ClientError::Other(format!("cannot read {flag} {}: {error}", path.display())))
}
