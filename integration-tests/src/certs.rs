//! Certificates generated at run time with `rcgen` (no key is committed):
//! a CA, a server certificate for `localhost`/`127.0.0.1` and a client
//! certificate, all signed by the CA, written as PEM files to a fresh
//! directory that is removed on drop; the server certificate can be renewed
//! in place, and the one a server presents read back.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SerialNumber};
use tokio::{io::AsyncReadExt as _, net::TcpStream};
use tokio_rustls::{
    TlsConnector,
    rustls::{
        ClientConfig, RootCertStore,
        pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject},
    },
};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::temp::TempDir;

/// PEM files of a test PKI.
#[derive(Debug)]
pub struct TestCerts {
    dir: TempDir,
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
    /// The CA's certificate and key, to sign renewals.
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCerts {
    /// Generates a CA, a server and a client certificate into a new temporary directory.
    pub fn generate() -> Self {
        Self::generate_with_ca_name("ConnectService test CA")
    }

    /// As [`generate`](Self::generate), with a CA of its own name (a CA the
    /// server does not know, rather than one that merely has another key).
    pub fn generate_with_ca_name(ca_name: &str) -> Self {
        let dir = TempDir::new("connect-test-certs");

        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, ca_name);
        let ca =
            CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key")).expect("ca cert");

        let (server_cert, server_key) = server_leaf(&ca, None);
        let (client_cert, client_key) = leaf(&ca, vec!["client.test".into()], "client.test", None);

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
            issuer: ca,
        }
    }

    /// A new server certificate and key, signed by the same CA, with the
    /// serial number `serial` and expiring on 1 January of the year 2100 +
    /// the serial's lowest byte (the first one expires in 4096): the PEM of
    /// the certificate and of the key.
    pub fn issue_server(&self, serial: u64) -> (String, String) {
        server_leaf(&self.issuer, Some(serial))
    }

    /// Replaces the server's certificate and key files with a new pair of
    /// serial `serial` (the key first: a reader between the two writes sees
    /// a mismatch, which is what a careless rotation does too).
    pub fn renew_server(&self, serial: u64) {
        let (cert, key) = self.issue_server(serial);
        std::fs::write(&self.server_key, key).expect("write key");
        std::fs::write(&self.server_cert, cert).expect("write cert");
    }

    /// The directory of the files, removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A rustls client (ALPN `h2`) trusting the CA, presenting `identity`
    /// (certificate and key files) if given.
    pub fn rustls_client(&self, identity: Option<(&Path, &Path)>) -> ClientConfig {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from_pem_file(&self.ca).expect("ca pem")).expect("ca cert");
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots);
        let mut config = match identity {
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .expect("cert pem")
                    .map(|c| c.expect("cert"))
                    .collect();
                let key = PrivateKeyDer::from_pem_file(key).expect("key pem");
                builder.with_client_auth_cert(chain, key).expect("client identity")
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        config
    }

    /// Tries one TLS handshake with the server at `addr`, trusting the CA and
    /// presenting `identity` (certificate, key) if given, then reads once
    /// (under TLS 1.3 the server's verdict on a client certificate comes
    /// then); fails the test unless the server refuses it.
    pub async fn assert_refused(&self, addr: SocketAddr, identity: Option<(&Path, &Path)>) {
        let config = self.rustls_client(identity);
        let tcp = TcpStream::connect(addr).await.expect("tcp connect");
        let attempt = async {
            let name = ServerName::try_from("localhost").expect("name");
            let mut tls = TlsConnector::from(Arc::new(config)).connect(name, tcp).await?;
            tls.read(&mut [0u8; 1]).await
        };
        let result = tokio::time::timeout(crate::PROMPTLY, attempt).await.expect("answered in time");
        assert!(result.is_err(), "the server accepted the handshake");
    }

    /// The serial number of the certificate the TLS server at `addr`
    /// presents to a new connection (as `localhost`, trusting the CA).
    pub async fn served_serial(&self, addr: SocketAddr) -> Vec<u8> {
        let config = self.rustls_client(None);
        let tcp = TcpStream::connect(addr).await.expect("tcp connect");
        let name = ServerName::try_from("localhost").expect("name");
        let tls = TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("TLS handshake");
        let served = tls.get_ref().1.peer_certificates().expect("a server certificate")[0].clone();
        serial_of(&served)
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

/// The serial number of `cert`, as its big-endian bytes.
pub fn serial_of(cert: &[u8]) -> Vec<u8> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).expect("an X.509 certificate");
    parsed.raw_serial().to_vec()
}

/// The `notAfter` of the first certificate in the PEM file at `path`, in seconds since the epoch.
pub fn not_after_of(path: &Path) -> i64 {
    let cert = CertificateDer::from_pem_file(path).expect("a PEM certificate");
    let (_, parsed) = x509_parser::parse_x509_certificate(&cert).expect("an X.509 certificate");
    parsed.validity().not_after.timestamp()
}

/// A server certificate (`localhost`, `127.0.0.1`) signed by `ca`, with `serial` if given.
fn server_leaf(ca: &CertifiedIssuer<'static, KeyPair>, serial: Option<u64>) -> (String, String) {
    leaf(ca, vec!["localhost".into(), "127.0.0.1".into()], "localhost", serial)
}

/// A certificate for `names` signed by `ca`, with `serial` if given: its PEM and its key's.
fn leaf(
    ca: &CertifiedIssuer<'static, KeyPair>,
    names: Vec<String>,
    common_name: &str,
    serial: Option<u64>,
) -> (String, String) {
    let key = KeyPair::generate().expect("leaf key");
    let mut params = CertificateParams::new(names).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, common_name);
    if let Some(serial) = serial {
        params.serial_number = Some(SerialNumber::from(serial));
        params.not_after = rcgen::date_time_ymd(2100 + i32::from(serial.to_be_bytes()[7]), 1, 1);
    }
    let cert = params.signed_by(&key, ca).expect("sign leaf");
    (cert.pem(), key.serialize_pem())
}

/// A path as a command-line argument.
pub fn path(path: &Path) -> String {
    path.to_str().expect("utf-8 temp path").to_owned()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read pem")
}
