//! The `connect-client` binary against an in-process server: `-H`, `-v`,
//! the failure lines and the exit codes. (Here rather than in
//! `integration-tests` because only this package's tests are given the
//! path of its binary, `CARGO_BIN_EXE_connect-client`.)

mod common;

use std::process::Stdio;

use clap::Parser;
use common::{client, client_with_input, command, text};
use connect_server::{Config, ConnectServer};
use tokio::net::TcpListener;

/// Starts a server on `127.0.0.1:0` for the rest of the test; returns its URL and port.
async fn start_server(args: &[&str]) -> (String, u16) {
    let mut argv = vec!["connect-server", "--stats-interval", "0", "--metrics-addr", "off"];
    argv.extend_from_slice(args);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = ConnectServer::new(Config::parse_from(argv)).expect("valid flags");
    tokio::spawn(server.serve(vec![listener], std::future::pending()));
    (format!("http://127.0.0.1:{port}"), port)
}

/// A server that accepts connections and never sends a byte; returns its URL
/// and the task holding the connections (abort it at the end).
async fn silent_server() -> (String, tokio::task::JoinHandle<()>) {
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let accepting = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    (url, accepting)
}

/// Asserts that the client refused its flags: exit 2 and clap's error line.
fn assert_usage_error(output: &std::process::Output, line_start: &str) {
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(text(&output.stderr).starts_with(line_start), "{}", text(&output.stderr));
}

/// The `header`/`trailer` lines of `-v`, without `date` (it changes every second).
fn metadata_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| !line.starts_with("header date: ") && !line.starts_with("trailer date: "))
        .collect()
}

#[tokio::test]
async fn verbose_prints_headers_and_trailers_to_stderr_only() {
    let (url, _) = start_server(&["--server-id", "node-1"]).await;
    let output = client(&url, &["-v", "-H", "x-request-id: cli-1", "unary", "World"]).await;
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(text(&output.stdout), "Response from server: Hello, World\n");
    assert_eq!(
        metadata_lines(&text(&output.stderr)),
        [
            "header content-type: application/grpc",
            "header x-request-id: cli-1",
            "header x-served-by: node-1",
            "trailer grpc-status: 0",
        ]
    );
}

#[tokio::test]
async fn health_and_list_send_headers_and_print_metadata_too() {
    let (url, _) = start_server(&["--server-id", "node-1"]).await;
    let output = client(&url, &["-v", "-H", "x-request-id: probe-1", "health"]).await;
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(text(&output.stdout), "SERVING\n");
    assert_eq!(
        metadata_lines(&text(&output.stderr)),
        [
            "header content-type: application/grpc",
            "header x-request-id: probe-1",
            "header x-served-by: node-1",
            "trailer grpc-status: 0",
        ]
    );
    let output = client(&url, &["-v", "-H", "x-request-id: probe-2", "list"]).await;
    assert_eq!(output.status.code(), Some(0));
    assert!(metadata_lines(&text(&output.stderr)).contains(&"header x-request-id: probe-2"), "{output:?}");
}

#[tokio::test]
async fn verbose_shows_the_default_server_name_and_message_count() {
    let (url, port) = start_server(&[]).await;
    let output = client(&url, &["server-stream", "--count", "2", "-v", "-H", "X-Request-Id: cli-2"]).await;
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        text(&output.stdout),
        "Response from server: Hello, People: server(1) \nResponse from server: Hello, People: server(2) \n"
    );
    let served_by = format!("header x-served-by: {}:{port}", gethostname::gethostname().to_string_lossy());
    assert_eq!(
        metadata_lines(&text(&output.stderr)),
        [
            "header content-type: application/grpc",
            "header x-request-id: cli-2",
            served_by.as_str(),
            "trailer x-message-count: 2",
            "trailer grpc-status: 0",
        ]
    );
}

#[tokio::test]
async fn a_failed_call_prints_its_field_violations() {
    let (url, _) = start_server(&[]).await;
    let output = client(&url, &["server-stream", "--count", "2000000"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stdout), "");
    assert_eq!(
        text(&output.stderr),
        "RPC failed: INVALID_ARGUMENT: count must be at most 1000000\n  field count: count must be at most 1000000\n"
    );
}

#[tokio::test]
async fn a_failed_call_with_verbose_shows_a_trailers_only_response() {
    let (url, _) = start_server(&["--server-id", "node-1"]).await;
    let output =
        client(&url, &["-v", "-H", "x-request-id: r", "-H", "x-echo-status: 5", "unary", "gone\tmissing"])
            .await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        metadata_lines(&text(&output.stderr)),
        [
            "trailer content-type: application/grpc",
            "trailer grpc-status: 5",
            "trailer grpc-message: gone%09missing",
            "trailer x-request-id: r",
            "trailer x-served-by: node-1",
            "RPC failed: NOT_FOUND: gone\tmissing",
        ]
    );
}

#[tokio::test]
async fn a_stream_past_its_deadline_exits_1() {
    let (url, _) = start_server(&[]).await;
    let output =
        client(&url, &["--timeout", "200ms", "server-stream", "--count", "100", "--interval-ms", "1000"])
            .await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stdout), "Response from server: Hello, People: server(1) \n");
    assert_eq!(text(&output.stderr), "RPC failed: DEADLINE_EXCEEDED: deadline exceeded\n");
}

#[tokio::test]
async fn binary_headers_are_sent_as_base64() {
    let (url, _) = start_server(&[]).await;
    let output = client(&url, &["-H", "trace-bin: AAEC/w==", "unary", "x"]).await;
    assert_eq!(
        (output.status.code(), text(&output.stdout)),
        (Some(0), "Response from server: Hello, x\n".to_owned())
    );
    let output = client(&url, &["-H", "trace-bin: %%%", "unary", "x"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).starts_with(
            "error: invalid value 'trace-bin: %%%' for '--header <KEY: VALUE>': trace-bin: value is not base64"
        ),
        "{}",
        text(&output.stderr)
    );
}

#[tokio::test]
async fn a_malformed_header_is_a_usage_error() {
    let output = client("http://127.0.0.1:1", &["-H", "no colon", "unary"]).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).starts_with(
            "error: invalid value 'no colon' for '--header <KEY: VALUE>': expected `key: value`, got \"no colon\""
        ),
        "{}",
        text(&output.stderr)
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_client_side_deadline() {
    // Accepts connections and says nothing: only the client's own timer can end the call.
    let (url, accepting) = silent_server().await;
    let output = client(&url, &["--timeout", "200ms", "unary"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stderr), "RPC failed: DEADLINE_EXCEEDED: deadline exceeded (client side)\n");
    accepting.abort();
}

#[tokio::test]
async fn keepalive_flags_take_durations_and_refuse_anything_else() {
    let (url, _) = start_server(&[]).await;
    let output =
        client(&url, &["--keepalive-interval", "1s", "unary", "ka", "--keepalive-timeout", "500ms"]).await;
    assert_eq!(
        (output.status.code(), text(&output.stdout)),
        (Some(0), "Response from server: Hello, ka\n".to_owned()),
        "{output:?}"
    );
    assert_usage_error(
        &client(&url, &["--keepalive-interval", "soon", "unary"]).await,
        "error: invalid value 'soon' for '--keepalive-interval <KEEPALIVE_INTERVAL>': expected number at 0",
    );
    assert_usage_error(
        &client(&url, &["--keepalive-interval", "1s", "--keepalive-timeout", "5", "unary"]).await,
        "error: invalid value '5' for '--keepalive-timeout <KEEPALIVE_TIMEOUT>': time unit needed, for example 5sec or 5ms",
    );
}

#[tokio::test]
async fn keepalive_ends_a_call_on_a_silent_connection_with_unavailable() {
    // Accepts connections and says nothing, not even a PING ack: without a
    // deadline only keepalive can end the call.
    let (url, accepting) = silent_server().await;
    let args = ["--keepalive-interval", "200ms", "--keepalive-timeout", "200ms", "unary"];
    let output = tokio::time::timeout(std::time::Duration::from_secs(10), client(&url, &args))
        .await
        .expect("keepalive ended the call within 10 s");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(text(&output.stderr).starts_with("RPC failed: UNAVAILABLE: "), "{}", text(&output.stderr));
    accepting.abort();
}

#[tokio::test]
async fn unary_prints_the_greeting() {
    let (url, _) = start_server(&[]).await;
    let output = client(&url, &["unary"]).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(text(&output.stdout), "Response from server: Hello, People\n");
}

#[tokio::test]
async fn server_stream_prints_ten_lines_like_the_original() {
    let (url, _) = start_server(&[]).await;
    let output = client(&url, &["server-stream"]).await;
    assert!(output.status.success(), "{output:?}");
    let expected: String =
        (1..=10).map(|i| format!("Response from server: Hello, People: server({i}) \n")).collect();
    assert_eq!(text(&output.stdout), expected);
}

#[tokio::test]
async fn client_stream_and_bidi_print_their_replies() {
    let (url, _) = start_server(&[]).await;
    let output = client(&url, &["client-stream", "Ann", "Bob"]).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(text(&output.stdout), "Response from server: Hello, Ann, Bob\n");
    // stdin is empty here: bidi sends nothing and ends cleanly.
    let output = client(&url, &["bidi"]).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(text(&output.stdout), "");
}

#[tokio::test]
async fn unreadable_stdin_cuts_the_stream_and_exits_4() {
    let (url, _) = start_server(&[]).await;
    // The second line is not UTF-8: the first request went out, the rest cannot.
    let output = client_with_input(&url, &["bidi"], b"Ann\n\xff\xfe\nBob\n").await;
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    assert_eq!(text(&output.stdout), "Response from server: Hello, Ann\n");
    assert_eq!(
        text(&output.stderr),
        "cannot read stdin (invalid utf-8 sequence of 1 bytes from index 0): the requests were cut short\n"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_one_line_and_exit_3() {
    // Bind and drop to find a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let output = client(&url, &["unary"]).await;
    assert_eq!(output.status.code(), Some(3));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with(&format!("cannot connect to {url}: ")), "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
}

/// A CA and a server certificate for `127.0.0.1`, as PEM files in a fresh directory.
struct Pki {
    dir: std::path::PathBuf,
}

impl Pki {
    fn write(name: &str) -> Self {
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
        Self { dir }
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
async fn https_without_ca_trusts_the_system_roots() {
    let pki = Pki::write("system");
    let other = Pki::write("other");
    let (url, port) =
        start_server(&["--tls-cert", &pki.path("server.pem"), "--tls-key", &pki.path("server.key")]).await;
    drop(url);
    let https = format!("https://127.0.0.1:{port}");
    // The system's roots as rustls-native-certs reads them: `SSL_CERT_FILE` names the bundle.
    let with_roots = |bundle: String| {
        let mut command = command(&https, &["unary"]);
        command.env("SSL_CERT_FILE", bundle).env_remove("SSL_CERT_DIR").stdin(Stdio::null());
        command
    };
    let trusted = with_roots(pki.path("ca.pem")).output().await.unwrap();
    assert_eq!(text(&trusted.stdout), "Response from server: Hello, People\n", "{}", text(&trusted.stderr));
    assert_eq!(trusted.status.code(), Some(0));

    let untrusted = with_roots(other.path("ca.pem")).output().await.unwrap();
    assert_eq!(untrusted.status.code(), Some(3), "{}", text(&untrusted.stderr));
    assert!(
        text(&untrusted.stderr).contains("invalid peer certificate: UnknownIssuer"),
        "{}",
        text(&untrusted.stderr)
    );

    // `--ca` replaces the system's roots.
    let replaced =
        with_roots(other.path("ca.pem")).args(["--ca", &pki.path("ca.pem")]).output().await.unwrap();
    assert_eq!(text(&replaced.stdout), "Response from server: Hello, People\n", "{}", text(&replaced.stderr));
}

#[tokio::test]
async fn call_prints_each_response_as_one_json_line() {
    let (url, _) = start_server(&[]).await;
    let output = client(&url, &["call", "ConnectService/UnaryRPC", "-d", r#"{"requestData":"x"}"#]).await;
    assert_eq!((output.status.code(), text(&output.stderr)), (Some(0), String::new()));
    assert_eq!(text(&output.stdout), "{\"responseData\":\"Hello, x\"}\n");

    let output =
        client(&url, &["call", "ConnectService/ServerStreamRPC", "-d", r#"{"requestData":"x","count":2}"#])
            .await;
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        text(&output.stdout),
        "{\"responseData\":\"Hello, x: server(1) \"}\n{\"responseData\":\"Hello, x: server(2) \"}\n"
    );

    let requests = b"{\"requestData\":\"a\"}\n\n{\"request_data\":\"b\"}\n";
    let output =
        client_with_input(&url, &["call", "ConnectService/ClientStreamRPC", "-d", "@-"], requests).await;
    assert_eq!((output.status.code(), text(&output.stderr)), (Some(0), String::new()));
    assert_eq!(text(&output.stdout), "{\"responseData\":\"Hello, a, b\"}\n");

    let output =
        client_with_input(&url, &["call", "ConnectService/BidiStreamRPC", "-d", "@-"], requests).await;
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(text(&output.stdout), "{\"responseData\":\"Hello, a\"}\n{\"responseData\":\"Hello, b\"}\n");

    // No `-d`: one empty message.
    let output = client(&url, &["call", "grpc.health.v1.Health/Check"]).await;
    assert_eq!(text(&output.stdout), "{\"status\":\"SERVING\"}\n");
}

#[tokio::test]
async fn call_sends_headers_and_verbose_shows_only_the_calls_metadata() {
    let (url, _) = start_server(&["--server-id", "node-1"]).await;
    let output = client(&url, &["-v", "-H", "x-request-id: dyn-1", "call", "ConnectService/UnaryRPC"]).await;
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(text(&output.stdout), "{\"responseData\":\"Hello, \"}\n");
    assert_eq!(
        metadata_lines(&text(&output.stderr)),
        [
            "header content-type: application/grpc",
            "header x-request-id: dyn-1",
            "header x-served-by: node-1",
            "trailer grpc-status: 0",
        ]
    );
}

#[tokio::test]
async fn call_with_bad_input_fails_with_exit_4_and_a_clear_message() {
    let (url, _) = start_server(&[]).await;
    let output = client(&url, &["call", "ConnectService/UnaryRPC", "-d", r#"{"requestData":1}"#]).await;
    assert_eq!(output.status.code(), Some(4));
    assert_eq!(text(&output.stdout), "");
    assert_eq!(
        text(&output.stderr),
        "invalid JSON for RequestMessage: invalid type: integer `1`, expected a string at line 1 column 16\n"
    );
    let requests = b"{\"requestData\":\"a\"}\n{\"nope\":1}\n";
    let output =
        client_with_input(&url, &["call", "ConnectService/ClientStreamRPC", "-d", "@-"], requests).await;
    assert_eq!(output.status.code(), Some(4));
    assert_eq!(
        text(&output.stderr),
        "invalid JSON for RequestMessage (line 2): unrecognized field name 'nope' at line 1 column 7\n"
    );
    let output = client(&url, &["call", "ConnectService/Nope"]).await;
    assert_eq!(output.status.code(), Some(4));
    assert_eq!(text(&output.stderr), "service \"ConnectService\" has no method \"Nope\"\n");
    let output = client(&url, &["call", "NoSuchService/Call"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).starts_with("RPC failed: NOT_FOUND: "), "{output:?}");
}

#[tokio::test]
async fn describe_prints_services_methods_and_fields() {
    let (url, _) = start_server(&[]).await;
    let connect_service = "service ConnectService\n\
        \x20 rpc UnaryRPC(RequestMessage) returns (ResponseMessage)\n\
        \x20 rpc ServerStreamRPC(RequestMessage) returns (stream ResponseMessage)\n\
        \x20 rpc ClientStreamRPC(stream RequestMessage) returns (ResponseMessage)\n\
        \x20 rpc BidiStreamRPC(stream RequestMessage) returns (stream ResponseMessage)\n";
    let output = client(&url, &["describe", "ConnectService"]).await;
    assert_eq!((output.status.code(), text(&output.stderr)), (Some(0), String::new()));
    assert_eq!(text(&output.stdout), connect_service);

    let output = client(&url, &["describe", "RequestMessage"]).await;
    assert_eq!(
        text(&output.stdout),
        "message RequestMessage\n  string request_data = 1\n  uint32 count = 2\n  uint32 interval_ms = 3\n"
    );
    let output = client(&url, &["describe", "ConnectService/ClientStreamRPC"]).await;
    assert_eq!(
        text(&output.stdout),
        "rpc ClientStreamRPC(stream RequestMessage) returns (ResponseMessage)\n"
    );

    let output = client(&url, &["describe"]).await;
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        text(&output.stdout),
        format!(
            "{connect_service}\n\
             service grpc.health.v1.Health\n\
             \x20 rpc Check(grpc.health.v1.HealthCheckRequest) returns (grpc.health.v1.HealthCheckResponse)\n\
             \x20 rpc Watch(grpc.health.v1.HealthCheckRequest) returns (stream grpc.health.v1.HealthCheckResponse)\n\
             \n\
             service grpc.reflection.v1.ServerReflection\n\
             \x20 rpc ServerReflectionInfo(stream grpc.reflection.v1.ServerReflectionRequest) \
             returns (stream grpc.reflection.v1.ServerReflectionResponse)\n"
        )
    );

    let output = client(&url, &["describe", "NoSuchThing"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).starts_with("RPC failed: NOT_FOUND: "), "{output:?}");
}
