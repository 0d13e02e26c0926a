//! What the tests of the `connect-client` binary share: running it and reading what it printed.

use std::process::{Output, Stdio};

use clap::Parser;
use connect_server::{Config, ConnectServer};
use tokio::{io::AsyncWriteExt, net::TcpListener, process::Command};

/// Starts a server on `127.0.0.1:0` for the rest of the test; returns its URL and port.
#[allow(dead_code, reason = "not every test file starts this server")]
pub(crate) async fn start_server(args: &[&str]) -> (String, u16) {
    let mut argv = vec!["connect-server", "--stats-interval", "0", "--metrics-addr", "off"];
    argv.extend_from_slice(args);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = ConnectServer::new(Config::parse_from(argv)).expect("valid flags");
    tokio::spawn(server.serve(vec![listener], std::future::pending()));
    (format!("http://127.0.0.1:{port}"), port)
}

/// Serves `ConnectService` alone, as the original Python server does: no
/// reflection, no health. Returns its URL.
#[allow(dead_code, reason = "not every test file starts this server")]
pub(crate) async fn start_server_without_reflection() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let limits = connect_server::service::Limits {
        max_stream_count: 1000,
        max_interval_ms: 1000,
        max_client_stream_bytes: 1 << 20,
    };
    let handlers = connect_server::service::Handlers::new(
        limits,
        std::sync::Arc::default(),
        tokio_util::sync::CancellationToken::new(),
    );
    let server = tonic::transport::Server::builder()
        .add_service(connect_proto::ConnectServiceServer::new(handlers))
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
    tokio::spawn(server);
    url
}

/// The client binary with `--addr url` and `args`, without the caller's `CONNECT_*` variables.
pub(crate) fn command(url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_connect-client"));
    // Every flag has a `CONNECT_*` variable; one set in the caller's shell would change the output.
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CONNECT_") {
            command.env_remove(name);
        }
    }
    command.arg("--addr").arg(url).args(args);
    command
}

/// Runs the client with an empty stdin.
#[allow(dead_code, reason = "not every test file runs the client to its end")]
pub(crate) async fn client(url: &str, args: &[&str]) -> Output {
    command(url, args).stdin(Stdio::null()).output().await.unwrap()
}

/// Runs the client with `input` on its stdin.
#[allow(dead_code, reason = "not every test file runs the client to its end")]
pub(crate) async fn client_with_input(url: &str, args: &[&str], input: &[u8]) -> Output {
    let mut child = command(url, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).await.unwrap();
    drop(stdin);
    child.wait_with_output().await.unwrap()
}

/// Bytes the client printed, as text.
#[allow(dead_code, reason = "not every test file runs the client to its end")]
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// A CA, a server certificate for `127.0.0.1` and a client certificate, as
/// PEM files in a fresh directory.
#[allow(dead_code, reason = "not every test file uses TLS")]
pub(crate) struct Pki {
    dir: std::path::PathBuf,
}

#[allow(dead_code, reason = "not every test file uses TLS")]
impl Pki {
    pub(crate) fn write(name: &str) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        let dir = std::env::temp_dir().join(format!("connect-client-roots-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, format!("{name} CA"));
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let server =
            CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&key, &ca).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
        std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
        let key = KeyPair::generate().unwrap();
        let client = CertificateParams::new(Vec::<String>::new()).unwrap().signed_by(&key, &ca).unwrap();
        std::fs::write(dir.join("client.pem"), client.pem()).unwrap();
        std::fs::write(dir.join("client.key"), key.serialize_pem()).unwrap();
        Self { dir }
    }

    pub(crate) fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
