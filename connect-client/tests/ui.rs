//! `connect-client ui`: the playground page served by the client for a real
//! server, its schema from reflection or `--proto`, calls through its
//! WebSocket over the client's connection, and the hostile cases.

mod common;

use std::{process::Stdio, time::Duration};

use common::{Pki, command, start_server, start_server_without_reflection};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    net::TcpStream,
    process::{Child, ChildStderr},
    time::timeout,
};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{self, Message, client::IntoClientRequest, http::HeaderValue},
};

/// Long enough for anything the tests wait for on a loaded machine.
const IN_TIME: Duration = Duration::from_secs(10);

/// A running `connect-client ui` and where its page is.
struct Ui {
    /// Killed when the test ends.
    _child: Child,
    /// `127.0.0.1:PORT`.
    addr: String,
    /// The lines the client writes to stderr.
    stderr: Lines<BufReader<ChildStderr>>,
}

impl Ui {
    /// Starts `connect-client --addr url ARGS ui UI_ARGS` and reads the line with its address.
    async fn start(url: &str, args: &[&str], ui_args: &[&str]) -> Self {
        let mut argv = args.to_vec();
        argv.push("ui");
        argv.extend_from_slice(ui_args);
        let mut child = command(url, &argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line =
            timeout(IN_TIME, lines.next_line()).await.expect("the line in time").unwrap().expect("a line");
        let addr = line
            .strip_prefix("playground at http://")
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or_else(|| panic!("the address line: {line:?}"))
            .to_owned();
        assert!(addr.starts_with("127.0.0.1:"), "loopback by default: {addr}");
        Self { _child: child, addr, stderr }
    }

    /// The next line the client writes to stderr.
    async fn stderr_line(&mut self) -> String {
        let line = timeout(IN_TIME, self.stderr.next_line()).await.expect("a stderr line in time");
        line.unwrap().expect("a line before the client exits")
    }

    /// `GET path`: the status, the content type and the body.
    async fn get(&self, path: &str) -> (u16, String, String) {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(
            TcpStream::connect(&self.addr).await.unwrap(),
        ))
        .await
        .unwrap();
        tokio::spawn(connection);
        let request = http::Request::get(path)
            .header("host", &self.addr)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
        let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
        (status, content_type, String::from_utf8(body.to_vec()).unwrap())
    }

    /// Opens `/ws` with `origin` and `host`, as a page of that origin would.
    async fn upgrade(&self, origin: &str, host: &str) -> Result<Page, tungstenite::Error> {
        let mut request = format!("ws://{}/ws", self.addr).into_client_request().unwrap();
        request.headers_mut().insert("origin", HeaderValue::from_str(origin).unwrap());
        request.headers_mut().insert("host", HeaderValue::from_str(host).unwrap());
        connect_async(request).await.map(|(socket, _)| Page(socket))
    }

    /// Makes a unary call as the page would; asserts it ends `OK` and returns its greeting.
    async fn greet(&self, data: &str) -> String {
        let mut page = self.page().await;
        page.call("/ConnectService/UnaryRPC", json!({"requestData": data})).await;
        let events = page.events().await;
        assert_eq!(events.last().unwrap()["code"], "OK", "{events:?}");
        responses(&events).concat()
    }

    /// The services `/schema.json` lists.
    async fn services(&self) -> Vec<String> {
        let (_, _, schema) = self.get("/schema.json").await;
        let schema: Value = serde_json::from_str(&schema).unwrap();
        schema["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Opens `/ws` as the page itself would.
    async fn page(&self) -> Page {
        self.upgrade(&format!("http://{}", self.addr), &self.addr).await.expect("the upgrade succeeds")
    }
}

/// One call's socket, as the page holds it.
struct Page(WebSocketStream<MaybeTlsStream<TcpStream>>);

impl Page {
    async fn command(&mut self, command: Value) {
        self.0.send(Message::text(command.to_string())).await.unwrap();
    }

    /// Starts `method` and sends its one request message.
    async fn call(&mut self, method: &str, message: Value) {
        self.command(json!({"type": "start", "method": method})).await;
        self.command(json!({"type": "message", "json": message})).await;
    }

    /// Every event until the socket closes.
    async fn events(&mut self) -> Vec<Value> {
        let mut events = Vec::new();
        loop {
            match timeout(IN_TIME, self.0.next()).await.expect("the call ends in time") {
                Some(Ok(Message::Text(text))) => events.push(serde_json::from_str(&text).unwrap()),
                Some(Ok(Message::Close(_))) | None => return events,
                Some(Ok(_)) => {}
                Some(Err(error)) => panic!("socket error: {error}"),
            }
        }
    }

    /// The next event of type `kind`.
    async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let message = timeout(IN_TIME, self.0.next()).await.expect("an event in time");
            if let Some(Ok(Message::Text(text))) = message {
                let event: Value = serde_json::from_str(&text).unwrap();
                if event["type"] == kind {
                    return event;
                }
            } else {
                panic!("the socket ended before a {kind} event: {message:?}");
            }
        }
    }
}

/// The `type` of each event.
fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|event| event["type"].as_str().unwrap()).collect()
}

/// The `responseData` of each `message` event.
fn responses(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .filter(|event| event["type"] == "message")
        .map(|event| event["json"]["responseData"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn serves_the_page_and_the_servers_services_from_reflection() {
    let (url, _) = start_server(&[]).await;
    let ui = Ui::start(&url, &[], &[]).await;
    let (status, content_type, page) = ui.get("/").await;
    assert_eq!((status, content_type.as_str()), (200, "text/html; charset=utf-8"));
    assert!(page.contains("<script src=\"app.js\""), "the playground's page: {page}");
    let (status, content_type, _) = ui.get("/app.js").await;
    assert_eq!((status, content_type.as_str()), (200, "text/javascript; charset=utf-8"));
    let (status, content_type, schema) = ui.get("/schema.json").await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let schema: Value = serde_json::from_str(&schema).unwrap();
    assert_eq!(schema["grpcUrl"], url);
    assert_eq!(schema["maxCalls"], 16);
    assert_eq!(schema["messages"]["RequestMessage"]["fields"][0]["jsonName"], "requestData");
    assert_eq!(
        ui.services().await,
        ["ConnectService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"]
    );
}

#[tokio::test]
async fn a_unary_call_goes_through_the_clients_connection_with_its_metadata() {
    let (url, _) = start_server(&[]).await;
    let ui = Ui::start(&url, &["-H", "x-request-id: from-ui"], &[]).await;
    let mut page = ui.page().await;
    page.call("/ConnectService/UnaryRPC", json!({"requestData": "ui"})).await;
    let events = page.events().await;
    assert_eq!(kinds(&events), ["request", "sent", "halfClosed", "headers", "message", "trailers"]);
    assert_eq!(events[1]["json"], json!({"requestData": "ui"}));
    // `-H` goes on every call, after the playground's request event: the server echoes it.
    assert_eq!(events[3]["headers"]["x-request-id"], "from-ui");
    assert_eq!(responses(&events), ["Hello, ui"]);
    assert_eq!((&events[5]["status"], &events[5]["code"]), (&json!(0), &json!("OK")));
}

#[tokio::test]
async fn calls_go_over_tls_with_the_token() {
    let pki = Pki::write("ui");
    let (_, port) = start_server(&[
        "--tls-cert",
        &pki.path("server.pem"),
        "--tls-key",
        &pki.path("server.key"),
        "--auth-token",
        "s3cret",
    ])
    .await;
    let url = format!("https://127.0.0.1:{port}");
    let ui = Ui::start(&url, &["--ca", &pki.path("ca.pem"), "--token", "s3cret"], &[]).await;
    let (_, _, schema) = ui.get("/schema.json").await;
    assert_eq!(serde_json::from_str::<Value>(&schema).unwrap()["grpcUrl"], url);
    assert_eq!(ui.greet("tls").await, "Hello, tls");
}

/// A client that pings faster than the server allows (without calls in
/// flight: once per 2 hours by default) gets GOAWAY `too_many_pings`; it
/// doubles its keepalive interval for its next connection and says so, and
/// again when that one is closed too. Over TLS, where the client reads the
/// GOAWAY above its own TLS layer.
#[tokio::test]
async fn keepalive_doubles_its_interval_each_time_the_server_says_too_many_pings() {
    let pki = Pki::write("ui-keepalive");
    let (_, port) =
        start_server(&["--tls-cert", &pki.path("server.pem"), "--tls-key", &pki.path("server.key")]).await;
    let url = format!("https://127.0.0.1:{port}");
    let mut ui = Ui::start(&url, &["--ca", &pki.path("ca.pem"), "--keepalive-interval", "100ms"], &[]).await;
    let said = |every: &str| {
        format!(
            "the server closed the connection with GOAWAY too_many_pings: pinging every {every} from now on"
        )
    };
    assert_eq!(ui.stderr_line().await, said("200ms"));
    assert_eq!(ui.greet("after").await, "Hello, after", "the next call goes over a new connection");
    assert_eq!(ui.stderr_line().await, said("400ms"));
}

#[tokio::test]
async fn a_server_stream_gives_each_message_then_the_trailers() {
    let (url, _) = start_server(&[]).await;
    let ui = Ui::start(&url, &[], &[]).await;
    let mut page = ui.page().await;
    page.call("/ConnectService/ServerStreamRPC", json!({"requestData": "ui", "count": 3})).await;
    let events = page.events().await;
    assert_eq!(
        kinds(&events),
        ["request", "sent", "halfClosed", "headers", "message", "message", "message", "trailers"]
    );
    assert_eq!(
        responses(&events),
        ["Hello, ui: server(1) ", "Hello, ui: server(2) ", "Hello, ui: server(3) "]
    );
    assert_eq!(events[7]["code"], "OK");
    assert_eq!(events[7]["trailers"]["x-message-count"], "3");
}

#[tokio::test]
async fn proto_files_serve_a_server_without_reflection() {
    let url = start_server_without_reflection().await;
    let ui = Ui::start(&url, &["--proto", "../proto/connect.proto"], &[]).await;
    assert_eq!(ui.services().await, ["ConnectService"]);
    assert_eq!(ui.greet("proto").await, "Hello, proto");
}

#[tokio::test]
async fn calls_go_out_in_the_connect_protocol_and_grpc_web() {
    let (url, _) = start_server(&[]).await;
    for protocol in ["connect", "grpcweb"] {
        let ui = Ui::start(&url, &["--protocol", protocol], &[]).await;
        let mut page = ui.page().await;
        page.call("/ConnectService/ServerStreamRPC", json!({"requestData": protocol, "count": 2})).await;
        let events = page.events().await;
        let expected = [format!("Hello, {protocol}: server(1) "), format!("Hello, {protocol}: server(2) ")];
        assert_eq!(responses(&events), expected, "{protocol}: {events:?}");
        assert_eq!(events.last().unwrap()["code"], "OK", "{protocol}");
    }
}

#[tokio::test]
async fn an_unreachable_server_is_one_line_and_exit_3() {
    let output = common::client("http://127.0.0.1:1", &["--proto", "../proto/connect.proto", "ui"]).await;
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(common::text(&output.stdout), "");
    assert_eq!(
        common::text(&output.stderr),
        "cannot connect to http://127.0.0.1:1: transport error: tcp connect error: \
         Connection refused (os error 111)\n"
    );
}

#[tokio::test]
async fn a_server_gone_after_the_start_is_each_calls_unavailable() {
    use clap::Parser as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let argv = ["connect-server", "--stats-interval", "0", "--metrics-addr", "off", "--shutdown-grace", "0s"];
    let server = connect_server::ConnectServer::new(connect_server::Config::parse_from(argv)).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(vec![listener], async {
        let _ = stopped.await;
    }));
    let ui = Ui::start(&url, &[], &[]).await;
    assert_eq!(ui.greet("before").await, "Hello, before");
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
    let mut page = ui.page().await;
    page.call("/ConnectService/UnaryRPC", json!({"requestData": "after"})).await;
    let end = page.next_of("trailers").await;
    assert_eq!((&end["code"], &end["trailersOnly"]), (&json!("UNAVAILABLE"), &json!(true)), "{end}");
}

#[tokio::test]
async fn another_origin_and_a_rebound_host_get_403() {
    let (url, _) = start_server(&[]).await;
    let ui = Ui::start(&url, &[], &[]).await;
    let forbidden = |result: Result<Page, tungstenite::Error>| match result {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("an HTTP refusal, not {other}"),
        Ok(_) => panic!("the upgrade was let through"),
    };
    assert_eq!(forbidden(ui.upgrade("http://evil.test", &ui.addr).await), 403);
    // DNS rebinding: a page of evil.test whose name now resolves to 127.0.0.1.
    let port = ui.addr.rsplit_once(':').unwrap().1;
    let rebound = format!("evil.test:{port}");
    assert_eq!(forbidden(ui.upgrade(&format!("http://{rebound}"), &rebound).await), 403);
    // The page's own origin still gets its socket.
    assert_eq!(ui.greet("still").await, "Hello, still");
}

#[tokio::test]
async fn a_call_past_max_calls_is_refused_until_one_ends() {
    let (url, _) = start_server(&[]).await;
    let ui = Ui::start(&url, &[], &["--max-calls", "1"]).await;
    let mut first = ui.page().await;
    first
        .call(
            "/ConnectService/ServerStreamRPC",
            json!({"requestData": "slow", "count": 2, "intervalMs": 60000}),
        )
        .await;
    first.next_of("message").await;
    let mut second = ui.page().await;
    second.call("/ConnectService/UnaryRPC", json!({})).await;
    assert_eq!(
        second.events().await,
        [json!({
            "type": "error",
            "t": 0.0,
            "message": "too many playground calls: at most 1 run at once (--max-calls); try again when one has ended",
            "fatal": true
        })]
    );
    first.command(json!({"type": "cancel"})).await;
    assert_eq!(first.next_of("cancelled").await["code"], "CANCELLED");
    assert_eq!(ui.greet("after").await, "Hello, after");
}

#[tokio::test]
async fn an_oversized_message_is_refused_and_the_call_goes_on() {
    let (url, _) = start_server(&[]).await;
    let ui = Ui::start(&url, &[], &["--max-message-size", "100"]).await;
    let mut page = ui.page().await;
    page.command(json!({"type": "start", "method": "/ConnectService/BidiStreamRPC"})).await;
    page.command(json!({"type": "message", "json": {"requestData": "x".repeat(200)}})).await;
    let refused = page.next_of("error").await;
    assert_eq!(
        refused,
        json!({
            "type": "error",
            "t": refused["t"],
            "message": "the message is 203 bytes, over the limit of 100 (--max-message-size)",
            "fatal": false
        })
    );
    page.command(json!({"type": "message", "json": {"requestData": "small"}})).await;
    assert_eq!(page.next_of("message").await["json"]["responseData"], "Hello, small");
    page.command(json!({"type": "halfClose"})).await;
    assert_eq!(page.next_of("trailers").await["code"], "OK");
}
