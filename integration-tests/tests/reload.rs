//! Reloading the TLS files and the token file without a restart
//! (`connect-server/src/server/reload.rs`): new handshakes and new calls get
//! the new material, connections and calls in flight keep what they started
//! with, and a bad file keeps the last good one.
//!
//! The tests that count reloads exactly turn the watcher off
//! (`--reload-watch off`) and reload with [`TestServer::reload`], what SIGHUP
//! does: a watcher would reload on its own as the test writes. The watcher
//! and the real SIGHUP have tests of their own.

use std::{
    future::Future,
    path::{Path, PathBuf},
    time::Duration,
};

use connect_proto::{ConnectServiceClient, RequestMessage};
use integration_tests::{
    PROMPTLY, TestServer,
    certs::{TestCerts, not_after_of, path, serial_of},
    child::ChildServer,
    request,
    scrape::sample,
    temp::TempDir,
};
use tokio::time::Instant;
use tokio_rustls::rustls::pki_types::{CertificateDer, pem::PemObject};
use tonic::{
    Code, Request,
    transport::{Certificate, Channel, ClientTlsConfig, Identity},
};

const RELOADS_OK: &str = r#"connect_reload_total{result="ok"}"#;
const RELOADS_FAILED: &str = r#"connect_reload_total{result="error"}"#;
const EXPIRY: &str = "connect_tls_certificate_expiry_timestamp_seconds";

/// A serial number whose DER encoding is its 8 bytes as they are (no sign byte, no leading zero).
fn serial(n: u64) -> u64 {
    0x5E00_0000_0000_0000 | n
}

/// A TLS server with the metrics endpoint on, its watcher off unless `watch`.
async fn tls_server(certs: &TestCerts, watch: bool) -> TestServer {
    let watch = if watch { "on" } else { "off" };
    TestServer::start_tls(certs, false, &["--metrics-addr", "127.0.0.1:0", "--reload-watch", watch]).await
}

/// `connect_reload_total` of `server`: (ok, error).
async fn reloads(server: &TestServer) -> (f64, f64) {
    let metrics = server.metrics_addr.expect("metrics on");
    (sample(metrics, RELOADS_OK).await, sample(metrics, RELOADS_FAILED).await)
}

/// Polls `done` every 10 ms until it holds; fails after [`PROMPTLY`].
async fn eventually<F: Future<Output = bool>>(what: &str, mut done: impl FnMut() -> F) {
    let deadline = Instant::now() + PROMPTLY;
    while !done().await {
        assert!(Instant::now() < deadline, "{what}: not within {PROMPTLY:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The serial number of the certificate in the PEM file at `path`.
fn serial_in(path: &Path) -> Vec<u8> {
    serial_of(&CertificateDer::from_pem_file(path).expect("a PEM certificate"))
}

async fn hello(channel: Channel, data: &str) -> String {
    let mut client = ConnectServiceClient::new(channel);
    client.unary_rpc(request(data)).await.expect("unary call").into_inner().response_data
}

#[tokio::test]
async fn new_handshakes_get_the_new_certificate_and_open_connections_keep_serving() {
    let certs = TestCerts::generate();
    let server = tls_server(&certs, false).await;
    let metrics = server.metrics_addr.expect("metrics on");
    assert_eq!(certs.served_serial(server.addr).await, serial_in(&certs.server_cert));
    assert_eq!(sample(metrics, EXPIRY).await, not_after_of(&certs.server_cert) as f64);
    let opened_before = server.tls_channel(&certs, false).await.expect("TLS connect");
    assert_eq!(hello(opened_before.clone(), "before").await, "Hello, before");

    certs.renew_server(serial(1));
    server.reload().expect("a valid certificate and key");

    assert_eq!(certs.served_serial(server.addr).await, serial(1).to_be_bytes());
    assert_eq!(reloads(&server).await, (1.0, 0.0));
    // 2101-01-01T00:00:00Z, read from the new certificate.
    assert_eq!(not_after_of(&certs.server_cert), 4_133_980_800);
    assert_eq!(sample(metrics, EXPIRY).await, 4_133_980_800.0);
    assert_eq!(hello(opened_before, "after").await, "Hello, after");
    let opened_after = server.tls_channel(&certs, false).await.expect("TLS connect");
    assert_eq!(hello(opened_after, "new").await, "Hello, new");
}

#[tokio::test]
async fn a_stream_opened_before_a_reload_finishes_ok() {
    let certs = TestCerts::generate();
    let server = tls_server(&certs, false).await;
    let mut client = ConnectServiceClient::new(server.tls_channel(&certs, false).await.expect("TLS connect"));
    let asked = RequestMessage { request_data: "long".into(), count: 5, interval_ms: 100 };
    let mut stream = client.server_stream_rpc(asked).await.expect("stream starts").into_inner();
    let first = stream.message().await.expect("first message").expect("not ended");
    assert_eq!(first.response_data, "Hello, long: server(1) ");

    certs.renew_server(serial(2));
    server.reload().expect("a valid certificate and key");
    assert_eq!(certs.served_serial(server.addr).await, serial(2).to_be_bytes());

    let mut rest = Vec::new();
    while let Some(message) = stream.message().await.expect("the stream goes on") {
        rest.push(message.response_data);
    }
    let expected: Vec<String> = (2..=5).map(|i| format!("Hello, long: server({i}) ")).collect();
    assert_eq!(rest, expected);
    let trailers = stream.trailers().await.expect("trailers").expect("some");
    assert_eq!(trailers.get("x-message-count").expect("counted"), "5");
    assert_eq!(reloads(&server).await, (1.0, 0.0));
}

/// What breaks a file in place.
type Breaks<'a> = Box<dyn Fn() + 'a>;

#[tokio::test]
async fn a_broken_file_keeps_the_last_good_certificate() {
    let certs = TestCerts::generate();
    let server = tls_server(&certs, false).await;
    let good = serial_in(&certs.server_cert);
    let expiry = not_after_of(&certs.server_cert) as f64;
    let metrics = server.metrics_addr.expect("metrics on");
    let (cert, key) = (path(&certs.server_cert), path(&certs.server_key));
    let (new_cert, new_key) = certs.issue_server(serial(3));
    let (_, other_key) = certs.issue_server(serial(4));

    let cases: [(&str, Breaks<'_>, String); 5] = [
        (
            "not PEM at all",
            Box::new(|| std::fs::write(&certs.server_cert, "not a certificate\n").unwrap()),
            format!("--tls-cert {cert}: no PEM certificate in it"),
        ),
        (
            "a PEM block of garbage",
            Box::new(|| {
                std::fs::write(
                    &certs.server_cert,
                    "-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----\n",
                )
                .unwrap()
            }),
            format!("--tls-cert {cert}: invalid certificate: Parsing Error: NomError(Eof)"),
        ),
        (
            "a key that is not the certificate's",
            Box::new(|| {
                std::fs::write(&certs.server_cert, &new_cert).unwrap();
                std::fs::write(&certs.server_key, &other_key).unwrap();
            }),
            format!("--tls-key {key} is not the key of the certificate in --tls-cert {cert}"),
        ),
        (
            "a missing key",
            Box::new(|| std::fs::remove_file(&certs.server_key).unwrap()),
            format!("cannot read --tls-key {key}: No such file or directory (os error 2)"),
        ),
        (
            "an empty key",
            Box::new(|| std::fs::write(&certs.server_key, "").unwrap()),
            format!("--tls-key {key}: no PEM private key in it: no items found"),
        ),
    ];
    for (failed, (case, break_it, reason)) in cases.iter().enumerate() {
        break_it();
        let error = server.reload().expect_err(case);
        assert_eq!(error.to_string(), *reason, "{case}");
        assert_eq!(reloads(&server).await, (0.0, (failed + 1) as f64), "{case}");
        assert_eq!(certs.served_serial(server.addr).await, good, "{case}: the last good certificate");
        assert_eq!(sample(metrics, EXPIRY).await, expiry, "{case}");
        let channel = server.tls_channel(&certs, false).await.expect("TLS connect");
        assert_eq!(hello(channel, case).await, format!("Hello, {case}"));
    }

    std::fs::write(&certs.server_cert, &new_cert).unwrap();
    std::fs::write(&certs.server_key, &new_key).unwrap();
    server.reload().expect("good files again");
    assert_eq!(certs.served_serial(server.addr).await, serial(3).to_be_bytes());
    assert_eq!(reloads(&server).await, (1.0, 5.0));
}

fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("ascii"));
    request
}

/// What a unary call with `token` gets: its answer, or its code and message.
async fn call_with(
    client: &mut ConnectServiceClient<Channel>,
    token: &str,
) -> Result<String, (Code, String)> {
    match client.unary_rpc(bearer(request(token), token)).await {
        Ok(response) => Ok(response.into_inner().response_data),
        Err(status) => Err((status.code(), status.message().to_owned())),
    }
}

fn refused() -> Result<String, (Code, String)> {
    Err((Code::Unauthenticated, "invalid bearer token".to_owned()))
}

#[tokio::test]
async fn a_new_client_ca_decides_from_the_next_handshake() {
    let certs = TestCerts::generate();
    let next = TestCerts::generate_with_ca_name("The next client CA");
    let dir = TempDir::new("connect-reload-client-ca");
    let client_ca = dir.join("client-ca.pem");
    std::fs::copy(&certs.ca, &client_ca).unwrap();
    let mut args = certs.server_args(false);
    args.extend(
        ["--tls-client-ca", &path(&client_ca), "--metrics-addr", "127.0.0.1:0", "--reload-watch", "off"]
            .map(str::to_owned),
    );
    let server = TestServer::start_with_owned_args(&args).await;
    let opened_before = server.tls_channel(&certs, true).await.expect("mTLS connect");
    assert_eq!(hello(opened_before.clone(), "before").await, "Hello, before");

    std::fs::copy(&next.ca, &client_ca).unwrap();
    server.reload().expect("a valid CA");

    assert_eq!(hello(opened_before, "accepted before").await, "Hello, accepted before");
    certs.assert_refused(server.addr, Some((&certs.client_cert, &certs.client_key))).await;
    let refused = r#"connect_tls_handshake_failures_total{reason="unknown_ca"}"#;
    let metrics = server.metrics_addr.expect("metrics on");
    // Counted once the server has sent its alert, which the client may read first.
    eventually("the refusal counted", || async { sample(metrics, refused).await == 1.0 }).await;
    let trusted = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(&certs.ca).unwrap()))
        .identity(Identity::from_pem(
            std::fs::read(&next.client_cert).unwrap(),
            std::fs::read(&next.client_key).unwrap(),
        ));
    let channel = Channel::from_shared(server.https_url())
        .unwrap()
        .tls_config(trusted)
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert_eq!(hello(channel, "new CA").await, "Hello, new CA");
    assert_eq!(reloads(&server).await, (1.0, 0.0));
}

/// A server whose token file (returned with its directory) holds
/// `old-token`, with the metrics endpoint on and its watcher off unless `watch`.
async fn token_server(watch: bool) -> (TempDir, PathBuf, TestServer) {
    let dir = TempDir::new("connect-reload-tokens");
    let file = dir.join("token");
    std::fs::write(&file, "old-token\n").unwrap();
    let watch = if watch { "on" } else { "off" };
    let args = ["--auth-token-file", &path(&file), "--metrics-addr", "127.0.0.1:0", "--reload-watch", watch];
    let server = TestServer::start_with_owned_args(&args.map(str::to_owned)).await;
    (dir, file, server)
}

#[tokio::test]
async fn a_rotated_token_is_required_from_then_on() {
    let (_dir, file, server) = token_server(false).await;
    let file_arg = path(&file);
    let mut client = server.client().await;
    assert_eq!(call_with(&mut client, "old-token").await, Ok("Hello, old-token".to_owned()));
    assert_eq!(call_with(&mut client, "new-token").await, refused());

    // The overlap: both are accepted.
    std::fs::write(&file, "old-token\n\n  new-token  \n").unwrap();
    server.reload().expect("two tokens");
    assert_eq!(call_with(&mut client, "old-token").await, Ok("Hello, old-token".to_owned()));
    assert_eq!(call_with(&mut client, "new-token").await, Ok("Hello, new-token".to_owned()));
    let asked = RequestMessage { request_data: "long".into(), count: 3, interval_ms: 100 };
    let mut stream =
        client.server_stream_rpc(bearer(asked, "old-token")).await.expect("started").into_inner();
    stream.message().await.expect("first message").expect("not ended");

    // The old token taken out: refused from then on; the call it started goes on.
    std::fs::write(&file, "new-token\n").unwrap();
    server.reload().expect("one token");
    assert_eq!(call_with(&mut client, "old-token").await, refused());
    assert_eq!(call_with(&mut client, "new-token").await, Ok("Hello, new-token".to_owned()));
    let mut rest = 0;
    while stream.message().await.expect("the stream goes on").is_some() {
        rest += 1;
    }
    assert_eq!(rest, 2);
    assert_eq!(reloads(&server).await, (2.0, 0.0));

    // An empty file or none at all: refused, the last tokens kept.
    std::fs::write(&file, " \n\n").unwrap();
    let error = server.reload().expect_err("no token");
    assert_eq!(error.to_string(), format!("--auth-token-file {file_arg}: no token in it"));
    std::fs::remove_file(&file).unwrap();
    let error = server.reload().expect_err("no file");
    assert_eq!(
        error.to_string(),
        format!("cannot read --auth-token-file {file_arg}: No such file or directory (os error 2)")
    );
    assert_eq!(call_with(&mut client, "new-token").await, Ok("Hello, new-token".to_owned()));
    assert_eq!(call_with(&mut client, "old-token").await, refused());
    assert_eq!(reloads(&server).await, (2.0, 2.0));
}

#[tokio::test]
async fn the_watcher_reloads_a_token_file_rewritten_in_place() {
    let (_dir, file, server) = token_server(true).await;
    let mut client = server.client().await;
    assert_eq!(call_with(&mut client, "old-token").await, Ok("Hello, old-token".to_owned()));

    std::fs::write(&file, "new-token\n").unwrap();
    eventually("the new token is accepted", || {
        let mut client = client.clone();
        async move { call_with(&mut client, "new-token").await.is_ok() }
    })
    .await;
    assert_eq!(call_with(&mut client, "old-token").await, refused());
    // How many reloads it took is the scheduler's: one that ran between the
    // write's truncation and its data found no token and was refused.
    let (ok, _) = reloads(&server).await;
    assert!(ok >= 1.0, "{ok}");
}

/// A Kubernetes Secret volume: `tls.crt -> ..data/tls.crt`, `..data -> ..v1`;
/// an update writes `..v2`, points `..data_tmp` at it and renames it over
/// `..data`, so that both files change in one step.
struct SecretVolume {
    dir: PathBuf,
    version: usize,
}

impl SecretVolume {
    fn new(certs: &TestCerts, cert: &str, key: &str) -> Self {
        let dir = certs.dir().join("secret");
        std::fs::create_dir_all(&dir).unwrap();
        let mut volume = Self { dir, version: 0 };
        volume.update(cert, key);
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(Path::new("..data").join(name), volume.dir.join(name)).unwrap();
        }
        volume
    }

    fn update(&mut self, cert: &str, key: &str) {
        self.version += 1;
        let version = format!("..v{}", self.version);
        let staged = self.dir.join(&version);
        std::fs::create_dir(&staged).unwrap();
        std::fs::write(staged.join("tls.crt"), cert).unwrap();
        std::fs::write(staged.join("tls.key"), key).unwrap();
        std::os::unix::fs::symlink(&version, self.dir.join("..data_tmp")).unwrap();
        std::fs::rename(self.dir.join("..data_tmp"), self.dir.join("..data")).unwrap();
    }

    fn path(&self, name: &str) -> String {
        path(&self.dir.join(name))
    }
}

#[tokio::test]
async fn the_watcher_follows_a_kubernetes_secret_update() {
    let certs = TestCerts::generate();
    let (cert, key) = certs.issue_server(serial(5));
    let mut volume = SecretVolume::new(&certs, &cert, &key);
    let (cert_arg, key_arg) = (volume.path("tls.crt"), volume.path("tls.key"));
    let args = ["--tls-cert", &cert_arg, "--tls-key", &key_arg, "--metrics-addr", "127.0.0.1:0"];
    let server = TestServer::start_with_args(&args).await;
    assert_eq!(certs.served_serial(server.addr).await, serial(5).to_be_bytes());

    let (cert, key) = certs.issue_server(serial(6));
    volume.update(&cert, &key);
    eventually("the new certificate is served", || async {
        certs.served_serial(server.addr).await == serial(6).to_be_bytes()
    })
    .await;
    // The swap is atomic: no reload ever saw a certificate without its key.
    let (ok, failed) = reloads(&server).await;
    assert!(ok >= 1.0, "{ok}");
    assert_eq!(failed, 0.0);
    let expiry = sample(server.metrics_addr.expect("metrics on"), EXPIRY).await;
    assert_eq!(expiry, not_after_of(&volume.dir.join("tls.crt")) as f64);
}

/// The binary: SIGHUP reloads (with the watcher off, so nothing else can)
/// and never ends the process, even a storm of them. Run by `scripts/reload`
/// with `CONNECT_SERVER_BIN` pointing at a built `connect-server`.
#[tokio::test]
#[ignore = "needs the connect-server binary: run scripts/reload"]
async fn sighup_reloads_the_binary_and_a_storm_of_them_is_harmless() {
    let certs = TestCerts::generate();
    let dir = TempDir::new("connect-reload-tokens");
    let file = dir.join("token");
    std::fs::write(&file, "old-token\n").unwrap();
    let mut args = certs.server_args(false);
    args.extend(["--auth-token-file".to_owned(), path(&file), "--reload-watch".to_owned(), "off".to_owned()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = ChildServer::spawn(&args).await;
    let addr = server.addr.parse().expect("an address");
    let channel = Channel::from_shared(format!("https://{addr}"))
        .expect("url")
        .tls_config(certs.client_tls(false))
        .expect("tls")
        .connect()
        .await
        .expect("connect");
    let mut client = ConnectServiceClient::new(channel);
    assert_eq!(call_with(&mut client, "old-token").await, Ok("Hello, old-token".to_owned()));

    certs.renew_server(serial(7));
    std::fs::write(&file, "new-token\n").unwrap();
    server.signal("HUP");
    eventually("the new certificate is served", || async {
        certs.served_serial(addr).await == serial(7).to_be_bytes()
    })
    .await;
    assert_eq!(call_with(&mut client, "old-token").await, refused());
    assert_eq!(call_with(&mut client, "new-token").await, Ok("Hello, new-token".to_owned()));

    // A broken token file: one WARN line with the reason, the last token kept.
    std::fs::write(&file, "\n").unwrap();
    server.signal("HUP");
    eventually("the reload's warning", || async { !server.output().is_empty() }).await;
    let output = server.output();
    assert_eq!(output.len(), 1, "{output:?}");
    assert!(output[0].contains(" WARN "), "{output:?}");
    assert!(output[0].contains("reload failed: keeping what was served before"), "{output:?}");
    assert!(output[0].contains(&format!("--auth-token-file {}: no token in it", path(&file))), "{output:?}");

    std::fs::write(&file, "new-token\n").unwrap();
    for _ in 0..200 {
        server.signal("HUP");
    }
    assert_eq!(call_with(&mut client, "new-token").await, Ok("Hello, new-token".to_owned()));
    assert_eq!(certs.served_serial(addr).await, serial(7).to_be_bytes());
    server.terminate();
    let (status, rest) = tokio::time::timeout(PROMPTLY, server.wait()).await.expect("exits");
    assert_eq!(status.code(), Some(0), "{rest:?}");
    assert_eq!(rest.len(), 2, "only the warning, then the farewell: {rest:?}");
    assert_eq!(rest[1], "Bye");
}
