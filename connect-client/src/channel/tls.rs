//! The TLS files for `https://` addresses, read when a channel is opened.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use tokio_rustls::rustls::{
    ClientConfig, RootCertStore,
    crypto::ring,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
};
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

    /// The rustls settings for `--http1` over `https://`: the roots and the
    /// identity of [`config`](Self::config), offering only HTTP/1.1 by ALPN.
    pub(crate) fn http1_config(&self) -> Result<ClientConfig, ClientError> {
        self.rustls_config(b"http/1.1")
    }

    /// The rustls settings for `bench`'s own HTTP/2 connections: as
    /// [`http1_config`](Self::http1_config), offering only `h2` by ALPN.
    pub(crate) fn h2_config(&self) -> Result<ClientConfig, ClientError> {
        self.rustls_config(b"h2")
    }

    /// The roots and the identity of [`config`](Self::config), offering only `alpn`.
    fn rustls_config(&self, alpn: &[u8]) -> Result<ClientConfig, ClientError> {
        let mut roots = RootCertStore::empty();
        match &self.ca {
            Some(ca) => {
                for cert in CertificateDer::pem_slice_iter(&read(ca, "--ca")?) {
                    let added = cert
                        .map_err(|error| error.to_string())
                        .and_then(|cert| roots.add(cert).map_err(|error| error.to_string()));
                    added.map_err(|error| invalid(ca, "--ca", &error))?;
                }
            }
            None => {
                // As tonic: the certificates that load; a bad one in the store is skipped.
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
            }
        }
        let builder = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|error| ClientError::Other(format!("TLS: {error}")))?
            .with_root_certificates(roots);
        let mut config = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_slice_iter(&read(cert, "--cert")?)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|error| invalid(cert, "--cert", &error.to_string()))?;
                let key = PrivateKeyDer::from_pem_slice(&read(key, "--key")?)
                    .map_err(|error| invalid(key, "--key", &error.to_string()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|error| ClientError::Other(format!("--cert and --key: {error}")))?
            }
            _ => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![alpn.to_vec()];
        Ok(config)
    }
}

fn invalid(path: &Path, flag: &str, error: &str) -> ClientError {
    ClientError::Other(format!("invalid {flag} {}: {error}", path.display()))
}

fn read(path: &Path, flag: &str) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path)
        .map_err(|error| ClientError::Other(format!("cannot read {flag} {}: {error}", path.display())))
}
