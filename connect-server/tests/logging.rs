//! The access log of the `connect-server` binary: one line per finished
//! call, as text or JSON, filtered by `RUST_LOG`. (Here rather than in
//! `integration-tests` because only this package's tests are given the path
//! of its binary, `CARGO_BIN_EXE_connect-server`.)

use std::{net::SocketAddr, process::Stdio, time::Duration};

use connect_proto::{ConnectServiceClient, RequestMessage};
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    process::{Child, ChildStdout, Command},
    time::timeout,
};
use tonic::{Code, Request};

const PROMPTLY: Duration = Duration::from_secs(10);

struct Server {
    /// Killed when the test ends (`kill_on_drop`).
    _child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    url: String,
}

impl Server {
    /// Starts the binary on `127.0.0.1:0` and reads its address from its first line.
    async fn start(log_format: &str, rust_log: &str) -> Self {
        Self::start_with(log_format, rust_log, &["--stats-interval", "0"]).await
    }

    async fn start_with(log_format: &str, rust_log: &str, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_connect-server"))
            .args(["--addr", "127.0.0.1:0", "--metrics-addr", "off"])
            .args(["--log-format", log_format])
            .args(args)
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next_line().await.unwrap().unwrap();
        let addr = first.strip_prefix("Server listening on ").expect("the listening line first");
        let url = format!("http://{addr}");
        Self { _child: child, lines, url }
    }

    async fn next_line(&mut self) -> String {
        timeout(PROMPTLY, self.lines.next_line()).await.expect("a log line").unwrap().expect("more output")
    }

    async fn unary(&self, request_id: &str, count: u32) -> Result<(), tonic::Status> {
        let mut client = ConnectServiceClient::connect(self.url.clone()).await.unwrap();
        let mut call = Request::new(RequestMessage { request_data: "log".into(), count, interval_ms: 0 });
        call.metadata_mut().insert("x-request-id", request_id.parse().unwrap());
        if count == 0 {
            client.unary_rpc(call).await.map(drop)
        } else {
            // ServerStreamRPC validates `count`; over the limit it fails at once.
            client.server_stream_rpc(call).await.map(drop)
        }
    }
}

#[tokio::test]
async fn json_lines_carry_method_peer_request_id_code_and_duration() {
    let mut server = Server::start("json", "connect_server::access=info").await;
    server.unary("log-1", 0).await.unwrap();
    let line: serde_json::Value = serde_json::from_str(&server.next_line().await).unwrap();
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["target"], "connect_server::access");
    assert_eq!(line["message"], "rpc finished");
    assert_eq!(line["method"], "/ConnectService/UnaryRPC");
    assert_eq!(line["request_id"], "log-1");
    assert_eq!(line["code"], "OK");
    assert_eq!(line["protocol"], "grpc");
    let peer: SocketAddr = line["peer"].as_str().unwrap().parse().unwrap();
    assert_eq!(peer.ip().to_string(), "127.0.0.1");
    let duration = line["duration_ms"].as_f64().unwrap();
    assert!(duration > 0.0 && duration < PROMPTLY.as_millis() as f64, "{duration}");

    assert_eq!(server.unary("log-2", 2_000_000).await.unwrap_err().code(), Code::InvalidArgument);
    let line: serde_json::Value = serde_json::from_str(&server.next_line().await).unwrap();
    assert_eq!(line["method"], "/ConnectService/ServerStreamRPC");
    assert_eq!(line["request_id"], "log-2");
    assert_eq!(line["code"], "INVALID_ARGUMENT");
}

#[tokio::test]
async fn text_lines_are_plain_key_values() {
    let mut server = Server::start("text", "connect_server::access=info").await;
    server.unary("log-3", 0).await.unwrap();
    let line = server.next_line().await;
    let (_, rest) = line.split_once("  INFO connect_server::access: ").expect(&line);
    assert!(rest.starts_with("rpc finished method=\"/ConnectService/UnaryRPC\" peer=127.0.0.1:"), "{line}");
    assert!(rest.contains(" request_id=log-3 code=\"OK\" duration_ms="), "{line}");
    assert!(rest.ends_with(" protocol=grpc"), "{line}");
    assert!(!line.contains('\u{1b}'), "no colour codes off a terminal: {line:?}");
}

#[tokio::test]
async fn rust_log_turns_the_access_log_off() {
    let mut server =
        Server::start_with("text", "info,connect_server::access=off", &["--stats-interval", "50ms"]).await;
    server.unary("quiet", 0).await.unwrap();
    // Lines are written in order, and the call's line (were it on) is queued before the
    // client has its response: so it would come before the second summary counting the call.
    let mut before = Vec::new();
    let mut counted = 0;
    while counted < 2 {
        let line = server.next_line().await;
        if line.contains(" stats ") && line.contains(" unary=1 ") {
            counted += 1;
        }
        before.push(line);
    }
    assert!(before.iter().all(|line| !line.contains("rpc finished")), "{before:?}");
    assert!(before.iter().all(|line| line.contains(" stats ")), "only summaries: {before:?}");
}
