//! A failed TLS handshake is one `WARN` line an operator can act on, with the
//! peer and the reason in plain words. (Here because it reads the binary's log.)

use std::{path::PathBuf, process::Stdio, sync::Arc, time::Duration};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    net::TcpStream,
    process::Command,
    time::timeout,
};
use tokio_rustls::{
    TlsConnector,
    rustls::{
        ClientConfig, RootCertStore,
        pki_types::{CertificateDer, ServerName},
    },
};

const PROMPTLY: Duration = Duration::from_secs(10);

/// A CA and a server certificate for `localhost`, as PEM files in a fresh directory.
struct Pki {
    dir: PathBuf,
    ca: CertificateDer<'static>,
}

impl Pki {
    fn write() -> Self {
        let dir = std::env::temp_dir().join(format!("connect-tls-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "tls log CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let server =
            CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&key, &ca).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
        std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
        Self { ca: ca.der().clone(), dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_client_without_a_certificate_gets_a_warn_line_naming_it() {
    let pki = Pki::write();
    let mut child = Command::new(env!("CARGO_BIN_EXE_connect-server"))
        .args(["--addr", "127.0.0.1:0", "--metrics-addr", "off", "--stats-interval", "0"])
        .args(["--tls-cert", &pki.path("server.pem"), "--tls-key", &pki.path("server.key")])
        .args(["--tls-client-ca", &pki.path("ca.pem")])
        .env("RUST_LOG", "info")
        .env_remove("CONNECT_LOG_FORMAT")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_line = async || timeout(PROMPTLY, lines.next_line()).await.unwrap().unwrap().unwrap();
    let addr = next_line().await.strip_prefix("Server listening on ").expect("the listening line").to_owned();

    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(&addr).await.unwrap();
    let peer = tcp.local_addr().unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let attempt = async {
        let mut tls = TlsConnector::from(Arc::new(config)).connect(name, tcp).await?;
        tls.read(&mut [0u8; 1]).await
    };
    assert!(timeout(PROMPTLY, attempt).await.unwrap().is_err(), "an mTLS server took an anonymous client");

    let line = loop {
        let line = next_line().await;
        if line.contains("TLS handshake failed") {
            break line;
        }
    };
    let (_, rest) = line.split_once("  WARN ").unwrap_or_else(|| panic!("a WARN line: {line}"));
    assert_eq!(
        rest,
        format!(
            "connect_server::tls: TLS handshake failed peer=\"{peer}\" \
             reason=\"no client certificate (mTLS requires one)\" error=peer sent no certificates suppressed=0"
        )
    );
}
