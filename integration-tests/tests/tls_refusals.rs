//! Failed TLS handshakes are counted by reason in
//! `connect_tls_handshake_failures_total` (the log line is checked on the
//! binary, in connect-server's tests): no client certificate, an X.509 v1
//! one, one from another CA, a plaintext client, a silent one.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use integration_tests::{
    PROMPTLY, TestServer,
    certs::{TestCerts, path},
    scrape::sample,
    wire::frames::PREFACE,
};
use tokio::{io::AsyncWriteExt, net::TcpStream};

fn failures(reason: &str) -> String {
    format!("connect_tls_handshake_failures_total{{reason=\"{reason}\"}}")
}

/// Waits until the server has counted `count` failures for `reason`.
async fn counted(server: &TestServer, reason: &str, count: f64) {
    let addr = server.metrics_addr.expect("metrics on");
    let wait = async {
        while sample(addr, &failures(reason)).await != count {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    if tokio::time::timeout(PROMPTLY, wait).await.is_err() {
        let (_, body) = integration_tests::scrape::http_get(addr, "/metrics").await;
        let seen: Vec<_> = body.lines().filter(|line| line.starts_with("connect_tls")).collect();
        panic!("{reason} never counted {count}: {seen:#?}");
    }
}

/// A TLS server with `certs`' certificate, its metrics on, and `extra` flags.
async fn tls_server(certs: &TestCerts, extra: &[&str]) -> TestServer {
    let mut args = certs.server_args(false);
    args.extend(["--metrics-addr", "127.0.0.1:0"].iter().chain(extra).map(|arg| (*arg).to_owned()));
    TestServer::start_with_owned_args(&args).await
}

async fn mtls_server(certs: &TestCerts, client_ca: &Path) -> TestServer {
    tls_server(certs, &["--tls-client-ca", &path(client_ca)]).await
}

#[tokio::test]
async fn a_client_without_a_certificate_is_counted() {
    let certs = TestCerts::generate();
    let server = mtls_server(&certs, &certs.ca).await;
    certs.assert_refused(server.addr, None).await;
    counted(&server, "no_client_certificate", 1.0).await;
    assert_eq!(sample(server.metrics_addr.unwrap(), &failures("unknown_ca")).await, 0.0, "series exist at 0");
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_counted() {
    let certs = TestCerts::generate();
    let other = TestCerts::generate_with_ca_name("Another CA");
    let server = mtls_server(&certs, &certs.ca).await;
    certs.assert_refused(server.addr, Some((&other.client_cert, &other.client_key))).await;
    counted(&server, "unknown_ca", 1.0).await;
}

/// A CA and an X.509 v1 client certificate it signed, made as a user would with
/// `openssl x509 -req` and no extensions file (OpenSSL then writes version 1).
struct V1Client {
    dir: PathBuf,
}

impl V1Client {
    fn make() -> Self {
        let dir = std::env::temp_dir().join(format!("connect-v1-cert-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("openssl must be installed (Debian: apt-get install openssl)");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        openssl(
            &[
                &["req", "-x509"],
                &ec[..],
                &["-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=v1 ca", "-days", "2"],
            ]
            .concat(),
        );
        openssl(
            &[&["req"], &ec[..], &["-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=v1 client"]]
                .concat(),
        );
        openssl(&[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "client.pem",
            "-days",
            "2",
        ]);
        let text = Command::new("openssl")
            .args(["x509", "-in", "client.pem", "-noout", "-text"])
            .current_dir(&dir)
            .output()
            .expect("openssl");
        assert!(String::from_utf8_lossy(&text.stdout).contains("Version: 1 (0x0)"), "not a v1 certificate");
        Self { dir }
    }
}

impl Drop for V1Client {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn an_x509_v1_client_certificate_is_counted_as_such() {
    let certs = TestCerts::generate();
    let v1 = V1Client::make();
    let server = mtls_server(&certs, &v1.dir.join("ca.pem")).await;
    // rustls will not even load a v1 certificate as a client identity; OpenSSL sends it.
    let addr = server.addr.to_string();
    let client = tokio::process::Command::new("openssl")
        .args(["s_client", "-connect", &addr, "-servername", "localhost", "-alpn", "h2"])
        .args(["-cert", "client.pem", "-key", "client.key", "-CAfile", &path(&certs.ca)])
        .current_dir(&v1.dir)
        .stdin(std::process::Stdio::null())
        .output();
    let out = tokio::time::timeout(PROMPTLY, client).await.expect("s_client ends").expect("openssl s_client");
    assert!(!out.stdout.is_empty(), "s_client ran: {}", String::from_utf8_lossy(&out.stderr));
    counted(&server, "unsupported_certificate_version", 1.0).await;
}

#[tokio::test]
async fn plaintext_and_silent_clients_are_counted() {
    let certs = TestCerts::generate();
    let server = tls_server(&certs, &["--tls-handshake-timeout", "200ms"]).await;

    let mut plaintext = TcpStream::connect(server.addr).await.unwrap();
    plaintext.write_all(PREFACE).await.unwrap();
    counted(&server, "not_tls", 1.0).await;

    let _silent = TcpStream::connect(server.addr).await.unwrap();
    counted(&server, "timeout", 1.0).await;
}

#[tokio::test]
async fn a_silent_client_is_a_timeout_whichever_timer_ends_it() {
    // The preface timeout of the socket is shorter than the TLS handshake timeout
    // here (as it is by default when both are 10 s: it starts at accept, first).
    let certs = TestCerts::generate();
    let server = tls_server(&certs, &["--handshake-timeout", "200ms"]).await;
    let _silent = TcpStream::connect(server.addr).await.unwrap();
    counted(&server, "timeout", 1.0).await;
    assert_eq!(sample(server.metrics_addr.unwrap(), &failures("other")).await, 0.0);
}
