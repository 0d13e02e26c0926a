//! Certificates generated at run time with `rcgen` (no key is committed):
//! a CA, a server certificate for `localhost`/`127.0.0.1` and a client
//! certificate, all signed by the CA, written as PEM files to a fresh
//! directory that is removed on drop.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// PEM files of a test PKI.
#[derive(Debug)]
pub struct TestCerts {
    dir: PathBuf,
    /// The CA certificate that signed the others.
    pub ca: PathBuf,
    /// The server certificate (SANs `localhost`, `127.0.0.1`).
    pub server_cert: PathBuf,
    /// The server's private key.
    pub server_key: PathBuf,
    /// A client certificate for mTLS.
    pub client_cert: PathBuf,
    /// The client's private key.
    pub client_key: PathBuf,
}

impl TestCerts {
    /// Generates a CA, a server and a client certificate into a new temporary directory.
    pub fn generate() -> Self {
        Self::generate_with_ca_name("ConnectService test CA")
    }

    /// As [`generate`](Self::generate), with a CA of its own name (a CA the
    /// server does not know, rather than one that merely has another key).
    pub fn generate_with_ca_name(ca_name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "connect-test-certs-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create cert dir");

        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, ca_name);
        let ca =
            CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key")).expect("ca cert");

        let leaf = |names: Vec<String>, common_name: &str| {
            let key = KeyPair::generate().expect("leaf key");
            let mut params = CertificateParams::new(names).expect("leaf params");
            params.distinguished_name.push(DnType::CommonName, common_name);
            let cert = params.signed_by(&key, &ca).expect("sign leaf");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(vec!["localhost".into(), "127.0.0.1".into()], "localhost");
        let (client_cert, client_key) = leaf(vec!["client.test".into()], "client.test");

        let write = |name: &str, pem: &str| {
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("write pem");
            path
        };
        Self {
            ca: write("ca.pem", &ca.pem()),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server.key", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client.key", &client_key),
            dir,
        }
    }

    /// Server flags for TLS; with `mtls`, client certificates signed by the CA are required.
    pub fn server_args(&self, mtls: bool) -> Vec<String> {
        let mut args = vec![
            "--tls-cert".to_owned(),
            path(&self.server_cert),
            "--tls-key".to_owned(),
            path(&self.server_key),
        ];
        if mtls {
            args.extend(["--tls-client-ca".to_owned(), path(&self.ca)]);
        }
        args
    }

    /// Client TLS trusting the test CA; with `identity`, presenting the client certificate.
    pub fn client_tls(&self, identity: bool) -> ClientTlsConfig {
        let config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(&self.ca)));
        if identity {
            config.identity(Identity::from_pem(read(&self.client_cert), read(&self.client_key)))
        } else {
            config
        }
    }
}

impl Drop for TestCerts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A path as a command-line argument.
pub fn path(path: &Path) -> String {
    path.to_str().expect("utf-8 temp path").to_owned()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read pem")
}
