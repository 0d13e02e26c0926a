//! `--protocol grpc|grpcweb|connect`, `--codec` and `--http1`: every call
//! kind each protocol and HTTP version allows against the in-process server,
//! the same failures on all three, and what the Connect translation does with
//! a server that breaks the protocol (a fake HTTP/1.1 server, one answer each).

mod common;

use common::{Pki, client, client_with_input, start_server, text};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
    sync::oneshot,
};

/// Each protocol over each HTTP version it can use, as flags.
const TRANSPORTS: [&[&str]; 5] = [
    &["--protocol", "grpc"],
    &["--protocol", "grpcweb"],
    &["--protocol", "grpcweb", "--http1"],
    &["--protocol", "connect"],
    &["--protocol", "connect", "--http1"],
];

/// The words of `text`, as arguments.
fn words(text: &'static str) -> Vec<&'static str> {
    text.split(' ').collect()
}

/// `call METHOD -d DATA` with the schema from `proto/connect.proto`.
fn call(method: &'static str, data: &'static str) -> Vec<&'static str> {
    vec!["--proto", "../proto/connect.proto", "call", method, "-d", data]
}

/// `transport` then `args`.
fn with(transport: &[&'static str], args: &[&'static str]) -> Vec<&'static str> {
    transport.iter().chain(args).copied().collect()
}

#[tokio::test]
async fn every_protocol_makes_every_call_its_transport_allows() {
    let (url, _) = start_server(&[]).await;
    for transport in TRANSPORTS {
        let output = client(&url, &with(transport, &["unary", "x"])).await;
        assert_eq!(
            (output.status.code(), text(&output.stdout).as_str()),
            (Some(0), "Response from server: Hello, x\n"),
            "{transport:?}"
        );
        let output = client(&url, &with(transport, &["server-stream", "s", "--count", "2"])).await;
        assert_eq!(
            (output.status.code(), text(&output.stdout).as_str()),
            (
                Some(0),
                "Response from server: Hello, s: server(1) \nResponse from server: Hello, s: server(2) \n"
            ),
            "{transport:?}"
        );
        let output = client(&url, &with(transport, &["client-stream", "a", "b"])).await;
        assert_eq!(
            (output.status.code(), text(&output.stdout).as_str()),
            (Some(0), "Response from server: Hello, a, b\n"),
            "{transport:?}"
        );
        if transport == ["--protocol", "connect", "--http1"] {
            continue;
        }
        let output = client_with_input(&url, &with(transport, &["bidi"]), b"p\nq\n").await;
        assert_eq!(
            (output.status.code(), text(&output.stdout).as_str()),
            (Some(0), "Response from server: Hello, p\nResponse from server: Hello, q\n"),
            "{transport:?}"
        );
        assert_eq!(text(&output.stderr), "", "{transport:?}");
    }
}

#[tokio::test]
async fn call_works_on_every_protocol_and_json_on_connect() {
    let (url, _) = start_server(&[]).await;
    let transports = TRANSPORTS.iter().map(|transport| transport.to_vec()).chain([
        vec!["--protocol", "connect", "--codec", "json"],
        vec!["--protocol", "connect", "--codec", "json", "--http1"],
    ]);
    for transport in transports {
        // Over --http1 reflection (a bidirectional stream) is not at hand on Connect: the schema comes from the file.
        let args = with(&transport, &call("ConnectService/UnaryRPC", r#"{"requestData":"j"}"#));
        let output = client(&url, &args).await;
        assert_eq!(
            (output.status.code(), text(&output.stdout).as_str()),
            (Some(0), "{\"responseData\":\"Hello, j\"}\n"),
            "{transport:?}"
        );
        let args =
            with(&transport, &call("ConnectService/ServerStreamRPC", r#"{"requestData":"j","count":2}"#));
        let output = client(&url, &args).await;
        assert_eq!(
            (output.status.code(), text(&output.stdout).as_str()),
            (
                Some(0),
                "{\"responseData\":\"Hello, j: server(1) \"}\n{\"responseData\":\"Hello, j: server(2) \"}\n"
            ),
            "{transport:?}"
        );
    }
}

#[tokio::test]
async fn failures_keep_their_code_and_message_on_every_protocol() {
    let (url, _) = start_server(&[]).await;
    for transport in TRANSPORTS {
        let output = client(&url, &with(transport, &["server-stream", "--count", "2000000"])).await;
        assert_eq!(output.status.code(), Some(1), "{transport:?}");
        assert_eq!(text(&output.stdout), "", "{transport:?}");
        assert_eq!(
            text(&output.stderr),
            "RPC failed: INVALID_ARGUMENT: count must be at most 1000000\n  field count: count must be at most 1000000\n",
            "{transport:?}"
        );
        let args = with(
            transport,
            &["--timeout", "200ms", "server-stream", "--count", "100", "--interval-ms", "1000"],
        );
        let output = client(&url, &args).await;
        assert_eq!(output.status.code(), Some(1), "{transport:?}");
        assert_eq!(
            text(&output.stdout),
            "Response from server: Hello, People: server(1) \n",
            "{transport:?}"
        );
        assert_eq!(
            text(&output.stderr),
            "RPC failed: DEADLINE_EXCEEDED: deadline exceeded\n",
            "{transport:?}"
        );
        let output = client(
            &url,
            &with(transport, &["--proto", "../proto/connect.proto", "call", "ConnectService/Nope"]),
        )
        .await;
        assert_eq!(output.status.code(), Some(2), "{transport:?}");
    }
}

#[tokio::test]
async fn usage_errors_name_what_cannot_work() {
    let refused = [
        (
            vec!["--http1", "unary"],
            "error: --http1: gRPC needs HTTP/2; over HTTP/1.1 use --protocol grpcweb or --protocol connect\n",
        ),
        (
            vec!["--protocol", "grpcweb", "--codec", "json", "unary"],
            "error: --codec json is for --protocol connect (gRPC and gRPC-Web carry protobuf)\n",
        ),
        (
            vec!["--protocol", "connect", "--http1", "bidi"],
            "error: bidi over the Connect protocol needs HTTP/2 (a full-duplex stream): drop --http1\n",
        ),
        (
            vec!["--protocol", "connect", "--http1", "bench"],
            "error: bench sends binary messages over HTTP/2 only: --http1 and --codec json are for the other commands\n",
        ),
    ];
    for (args, stderr) in refused {
        let output = client("http://127.0.0.1:1", &args).await;
        assert_eq!((output.status.code(), text(&output.stderr).as_str()), (Some(2), stderr), "{args:?}");
    }
}

#[tokio::test]
async fn reflection_over_connect_on_http1_says_to_give_the_schema() {
    let (url, _) = start_server(&[]).await;
    let output = client(&url, &["--protocol", "connect", "--http1", "list"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        "RPC failed: FAILED_PRECONDITION: grpc.reflection.v1.ServerReflection.ServerReflectionInfo is a bidirectional \
         stream, which the Connect protocol carries over HTTP/2 only: drop --http1, or give the schema with --proto or \
         --protoset instead of reflection\n"
    );
    let output = client(
        &url,
        &words("--protocol connect --http1 --proto ../proto/connect.proto call ConnectService/BidiStreamRPC"),
    )
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        "RPC failed: FAILED_PRECONDITION: ConnectService.BidiStreamRPC is a bidirectional stream, which the Connect \
         protocol carries over HTTP/2 only: drop --http1\n"
    );
}

#[tokio::test]
async fn an_unreachable_server_exits_3_over_http1_too() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let output = client(&url, &["--protocol", "connect", "--http1", "unary"]).await;
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(
        text(&output.stderr),
        format!("cannot connect to {url}: tcp connect error: Connection refused (os error 111)\n")
    );
}

#[tokio::test]
async fn https_works_for_every_protocol_over_both_http_versions() {
    let pki = Pki::write("protocols");
    let other = Pki::write("protocols-other");
    let (_, port) =
        start_server(&["--tls-cert", &pki.path("server.pem"), "--tls-key", &pki.path("server.key")]).await;
    let https = format!("https://127.0.0.1:{port}");
    let (trusted, untrusted) = (pki.path("ca.pem"), other.path("ca.pem"));
    for transport in TRANSPORTS {
        let args: Vec<&str> = transport.iter().copied().chain(["--ca", &trusted, "unary", "tls"]).collect();
        let output = client(&https, &args).await;
        assert_eq!(
            (output.status.code(), text(&output.stdout).as_str(), text(&output.stderr).as_str()),
            (Some(0), "Response from server: Hello, tls\n", ""),
            "{transport:?}"
        );
        let args: Vec<&str> = transport.iter().copied().chain(["--ca", &untrusted, "unary"]).collect();
        let output = client(&https, &args).await;
        assert_eq!(output.status.code(), Some(3), "{transport:?}");
        let stderr = text(&output.stderr);
        assert!(stderr.starts_with(&format!("cannot connect to {https}: ")), "{transport:?}: {stderr}");
        assert!(stderr.contains("invalid peer certificate: UnknownIssuer"), "{transport:?}: {stderr}");
    }
}

#[tokio::test]
async fn mtls_sends_the_client_certificate_over_http1_too() {
    let pki = Pki::write("protocols-mtls");
    let (server_cert, server_key, ca) = (pki.path("server.pem"), pki.path("server.key"), pki.path("ca.pem"));
    let (_, port) =
        start_server(&["--tls-cert", &server_cert, "--tls-key", &server_key, "--tls-client-ca", &ca]).await;
    let https = format!("https://127.0.0.1:{port}");
    let (cert, key) = (pki.path("client.pem"), pki.path("client.key"));
    for transport in [["--protocol", "connect"], ["--protocol", "grpcweb"]] {
        let args: Vec<&str> = transport
            .iter()
            .copied()
            .chain(["--http1", "--ca", &ca, "--cert", &cert, "--key", &key, "unary", "m"])
            .collect();
        let output = client(&https, &args).await;
        assert_eq!(
            (output.status.code(), text(&output.stdout).as_str(), text(&output.stderr).as_str()),
            (Some(0), "Response from server: Hello, m\n", ""),
            "{transport:?}"
        );
        let args: Vec<&str> = transport.iter().copied().chain(["--http1", "--ca", &ca, "unary"]).collect();
        let output = client(&https, &args).await;
        // Under TLS 1.3 the server refuses the client after the handshake: before the first
        // call (exit 3, unreachable) or under it (exit 1, UNAVAILABLE), the alert named either way.
        let stderr = text(&output.stderr);
        assert!(matches!(output.status.code(), Some(1 | 3)), "{transport:?}: {output:?}");
        assert!(stderr.ends_with(": received fatal alert: CertificateRequired\n"), "{transport:?}: {stderr}");
        assert_eq!(text(&output.stdout), "", "{transport:?}");
    }
}

/// One HTTP/1.1 request as a fake server read it: the head and the body.
#[derive(Debug)]
struct Recorded {
    head: String,
    body: Vec<u8>,
}

/// A fake HTTP/1.1 server that answers one request with `response` (the
/// whole response, as bytes) and hands back what it read.
async fn fake_server(response: Vec<u8>) -> (String, oneshot::Receiver<Recorded>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (sender, received) = oneshot::channel();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            head.push_str(&line);
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        let lower = head.to_ascii_lowercase();
        let mut body = Vec::new();
        if let Some(length) = lower.lines().find_map(|line| line.strip_prefix("content-length: ")) {
            body.resize(length.trim().parse().unwrap(), 0);
            reader.read_exact(&mut body).await.unwrap();
        } else if lower.contains("transfer-encoding: chunked") {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size).await.unwrap();
                let size = usize::from_str_radix(size.trim(), 16).unwrap();
                let mut chunk = vec![0; size + 2];
                reader.read_exact(&mut chunk).await.unwrap();
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        }
        // A client that stops reading (a body over its limit) closes the connection: not a failure here.
        let _ = reader.get_mut().write_all(&response).await;
        let _ = reader.get_mut().shutdown().await;
        let _ = sender.send(Recorded { head, body });
    });
    (url, received)
}

/// An HTTP/1.1 response with `status`, `content_type` and `body`.
fn response(status: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(body);
    response
}

/// `payload` in an envelope with `flags`.
fn envelope(flags: u8, payload: &[u8]) -> Vec<u8> {
    connect_proto::framing::encode(flags, payload)
}

#[tokio::test]
async fn codec_json_sends_and_reads_json() {
    let (url, received) =
        fake_server(response("200 OK", "application/json", br#"{"responseData":"Hello, j"}"#)).await;
    let args = [
        words("--protocol connect --codec json --http1 --timeout 5s"),
        call("ConnectService/UnaryRPC", r#"{"request_data":"j"}"#),
    ]
    .concat();
    let output = client(&url, &args).await;
    assert_eq!(
        (output.status.code(), text(&output.stdout).as_str()),
        (Some(0), "{\"responseData\":\"Hello, j\"}\n")
    );
    let request = received.await.unwrap();
    assert!(request.head.starts_with("POST /ConnectService/UnaryRPC HTTP/1.1\r\n"), "{request:?}");
    let lower = request.head.to_ascii_lowercase();
    for header in [
        "content-type: application/json\r\n",
        "connect-protocol-version: 1\r\n",
        "connect-timeout-ms: 5000\r\n",
    ] {
        assert!(lower.contains(header), "{header:?} missing: {request:?}");
    }
    assert!(!lower.contains("grpc-"), "{request:?}");
    assert_eq!(request.body, br#"{"requestData":"j"}"#);
}

#[tokio::test]
async fn codec_json_streams_carry_json_envelopes() {
    let mut body = envelope(0, br#"{"responseData":"one"}"#);
    body.extend(envelope(2, br#"{"metadata":{"x-message-count":["1"]}}"#));
    let (url, received) = fake_server(response("200 OK", "application/connect+json", &body)).await;
    let args =
        ["--protocol", "connect", "--codec", "json", "--http1", "-v", "server-stream", "s", "--count", "1"];
    let output = client(&url, &args).await;
    assert_eq!(
        (output.status.code(), text(&output.stdout).as_str()),
        (Some(0), "Response from server: one\n")
    );
    assert_eq!(
        text(&output.stderr),
        "header content-type: application/grpc\ntrailer grpc-status: 0\ntrailer x-message-count: 1\n"
    );
    let request = received.await.unwrap();
    assert!(
        request.head.to_ascii_lowercase().contains("content-type: application/connect+json\r\n"),
        "{request:?}"
    );
    assert_eq!(request.body, envelope(0, br#"{"requestData":"s","count":1}"#));
}

/// What the client prints (exit code, stdout, stderr) for a Connect unary
/// call answered with `answer`.
async fn unary_answered_with(answer: Vec<u8>) -> (Option<i32>, String, String) {
    let (url, _received) = fake_server(answer).await;
    let output = client(&url, &["--protocol", "connect", "--http1", "unary"]).await;
    (output.status.code(), text(&output.stdout), text(&output.stderr))
}

#[tokio::test]
async fn hostile_connect_answers_are_clear_failures() {
    let rpc_failed = |message: &str| (Some(1), String::new(), format!("RPC failed: {message}\n"));
    // An error body that is not JSON: the HTTP status decides the code.
    assert_eq!(
        unary_answered_with(response("500 Internal Server Error", "application/json", br#"{"code": 12"#))
            .await,
        rpc_failed(r#"UNKNOWN: HTTP 500 Internal Server Error without a Connect error: {"code": 12"#)
    );
    // JSON with a code the protocol does not have.
    assert_eq!(
        unary_answered_with(response(
            "429 Too Many Requests",
            "application/json",
            br#"{"code":"slow_down"}"#
        ))
        .await,
        rpc_failed(
            r#"UNAVAILABLE: HTTP 429 Too Many Requests without a Connect error: {"code":"slow_down"}"#
        )
    );
    // A proxy's error page.
    assert_eq!(
        unary_answered_with(response("502 Bad Gateway", "text/html", b"<html>\r\n<h1>502</h1>\r\n</html>"))
            .await,
        rpc_failed("UNAVAILABLE: HTTP 502 Bad Gateway without a Connect error: <html> <h1>502</h1> </html>")
    );
    // A well-formed error keeps its code and message, whatever the HTTP status.
    assert_eq!(
        unary_answered_with(response(
            "418 I'm a teapot",
            "application/json",
            br#"{"code":"not_found","message":"gone"}"#
        ))
        .await,
        rpc_failed("NOT_FOUND: gone")
    );
    // A body over the 4 MiB a message may have: not read past the limit.
    assert_eq!(
        unary_answered_with(response("200 OK", "application/proto", &vec![0; 5 << 20])).await,
        rpc_failed("RESOURCE_EXHAUSTED: the response is over 4194304 bytes")
    );
    // Success with a body that is not the message.
    assert_eq!(
        unary_answered_with(response("200 OK", "application/proto", b"\xff\xff\xff")).await,
        rpc_failed("INTERNAL: failed to decode Protobuf message: invalid varint")
    );
    assert_eq!(
        unary_answered_with(response("200 OK", "text/plain", b"hi")).await,
        rpc_failed("INTERNAL: the server answered content-type text/plain, not application/proto")
    );
}

/// What the client prints for a Connect server stream answered with `body`.
async fn stream_answered_with(body: &[u8]) -> (Option<i32>, String, String) {
    let (url, _received) = fake_server(response("200 OK", "application/connect+proto", body)).await;
    let output = client(&url, &["--protocol", "connect", "--http1", "server-stream"]).await;
    (output.status.code(), text(&output.stdout), text(&output.stderr))
}

#[tokio::test]
async fn hostile_connect_streams_are_clear_failures() {
    let rpc_failed = |message: &str| (Some(1), String::new(), format!("RPC failed: {message}\n"));
    assert_eq!(
        stream_answered_with(&envelope(2, b"not json")).await,
        rpc_failed("INTERNAL: the server sent an end-of-stream message that is not a JSON object")
    );
    assert_eq!(
        stream_answered_with(b"").await,
        rpc_failed("INTERNAL: the stream ended without an end-of-stream message")
    );
    assert_eq!(
        stream_answered_with(&envelope(0, b"\x0a\x03abc")[..6]).await,
        rpc_failed("INTERNAL: the stream ended inside a message")
    );
    assert_eq!(
        stream_answered_with(&[0, 0xff, 0xff, 0xff, 0xff]).await,
        rpc_failed("RESOURCE_EXHAUSTED: a message of 4294967295 bytes is over the limit of 4194304")
    );
    assert_eq!(
        stream_answered_with(&envelope(2, br#"{"error":{"code":"aborted","message":"no"}}"#)).await,
        rpc_failed("ABORTED: no")
    );
}
