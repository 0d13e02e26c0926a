//! The browser playground: calls over its WebSocket (`/ws` on the metrics
//! endpoint) run through the server's own stack, and show what a client
//! would see; the hostile cases get clear answers.

use futures::{SinkExt, StreamExt};
use integration_tests::{
    PROMPTLY, TestServer,
    certs::TestCerts,
    scrape::{http_get, sample},
};
use serde_json::{Value, json};
use tokio::{net::TcpStream, time::timeout};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A server with the metrics endpoint (and so the playground) on `127.0.0.1:0`.
async fn server(args: &[&str]) -> TestServer {
    let mut argv = vec!["--metrics-addr", "127.0.0.1:0"];
    argv.extend_from_slice(args);
    TestServer::start_with_args(&argv).await
}

fn endpoint(server: &TestServer) -> std::net::SocketAddr {
    server.metrics_addr.expect("the metrics endpoint is on")
}

/// Opens the playground socket as the page would, with its own origin.
async fn open(server: &TestServer) -> Socket {
    let addr = endpoint(server);
    open_with_origin(server, &format!("http://{addr}")).await.expect("the upgrade succeeds")
}

async fn open_with_origin(
    server: &TestServer,
    origin: &str,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let mut request = format!("ws://{}/ws", endpoint(server)).into_client_request().unwrap();
    request.headers_mut().insert("origin", HeaderValue::from_str(origin).unwrap());
    connect_async(request).await.map(|(socket, _)| socket)
}

async fn send(socket: &mut Socket, command: Value) {
    socket.send(Message::text(command.to_string())).await.unwrap();
}

/// The next event; panics when the socket ends first.
async fn next(socket: &mut Socket) -> Value {
    loop {
        let message = timeout(PROMPTLY, socket.next()).await.expect("an event in time");
        match message.expect("the socket is open").expect("a message") {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Close(_) => panic!("the socket closed"),
            _ => {}
        }
    }
}

/// The next event of type `kind`, skipping the others.
async fn next_of(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let event = next(socket).await;
        if event["type"] == kind {
            return event;
        }
    }
}

/// Every event up to the socket's close.
async fn rest(socket: &mut Socket) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let message = timeout(PROMPTLY, socket.next()).await.expect("the call ends in time");
        match message {
            Some(Ok(Message::Text(text))) => events.push(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(_))) | None => return events,
            Some(Ok(_)) => {}
            Some(Err(error)) => panic!("socket error: {error}"),
        }
    }
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|event| event["type"].as_str().unwrap()).collect()
}

/// Starts `method` and sends `message` (which ends the request of a unary or server-streaming call).
async fn call(server: &TestServer, start: Value, message: Value) -> Vec<Value> {
    let mut socket = open(server).await;
    send(&mut socket, start).await;
    send(&mut socket, json!({"type": "message", "json": message})).await;
    rest(&mut socket).await
}

fn start(method: &str) -> Value {
    json!({"type": "start", "method": method})
}

#[tokio::test]
async fn unary_shows_headers_the_greeting_and_the_status() {
    let server = server(&["--server-id", "node-a"]).await;
    let events = call(&server, start("/ConnectService/UnaryRPC"), json!({"requestData": "People"})).await;
    assert_eq!(types(&events), ["request", "sent", "halfClosed", "headers", "message", "trailers"]);
    assert_eq!(events[0]["t"], 0);
    assert_eq!(events[0]["headers"]["content-type"], "application/grpc");
    assert_eq!(events[1]["json"], json!({"requestData": "People"}));
    let request_id = events[3]["headers"]["x-request-id"].as_str().unwrap();
    assert_eq!(request_id.len(), 36, "a UUID: {request_id}");
    assert_eq!(events[3]["headers"]["x-served-by"], "node-a");
    assert_eq!(events[4]["json"], json!({"responseData": "Hello, People"}));
    assert_eq!(events[5]["status"], 0);
    assert_eq!(events[5]["code"], "OK");
    assert_eq!(events[5]["trailersOnly"], false);
}

#[tokio::test]
async fn metadata_reaches_the_service_and_the_token_check() {
    let server = server(&["--auth-token", "s3cret"]).await;
    let refused = call(&server, start("/ConnectService/UnaryRPC"), json!({"requestData": "x"})).await;
    let end = refused.last().unwrap();
    assert_eq!(end["code"], "UNAUTHENTICATED");
    assert_eq!(end["trailersOnly"], true);
    let start = json!({
        "type": "start",
        "method": "/ConnectService/UnaryRPC",
        "metadata": {"authorization": "Bearer s3cret", "x-request-id": "pg-1"},
    });
    let events = call(&server, start, json!({"request_data": "x"})).await;
    assert_eq!(events[0]["headers"]["authorization"], "Bearer s3cret");
    assert_eq!(events[3]["headers"]["x-request-id"], "pg-1");
    assert_eq!(events[4]["json"], json!({"responseData": "Hello, x"}));
    assert_eq!(events.last().unwrap()["code"], "OK");
}

#[tokio::test]
async fn a_server_stream_with_an_interval_arrives_spread_out() {
    let server = server(&[]).await;
    let message = json!({"requestData": "Rust", "count": 5, "intervalMs": 50});
    let events = call(&server, start("/ConnectService/ServerStreamRPC"), message).await;
    let messages: Vec<&Value> = events.iter().filter(|event| event["type"] == "message").collect();
    let texts: Vec<&str> = messages.iter().map(|m| m["json"]["responseData"].as_str().unwrap()).collect();
    assert_eq!(
        texts,
        (1..=5)
            .map(|i| format!("Hello, Rust: server({i}) "))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    let times: Vec<f64> = messages.iter().map(|m| m["t"].as_f64().unwrap()).collect();
    for pair in times.windows(2) {
        assert!(pair[1] > pair[0], "rising: {times:?}");
    }
    // Four pauses of 50 ms between the first message and the last.
    assert!(times[4] - times[0] >= 190.0, "spread over 200 ms: {times:?}");
    let end = events.last().unwrap();
    assert_eq!(end["code"], "OK");
    assert_eq!(end["trailers"]["x-message-count"], "5");
}

#[tokio::test]
async fn a_bidi_ping_is_answered_before_the_pong_is_sent() {
    let server = server(&[]).await;
    let mut socket = open(&server).await;
    send(&mut socket, start("/ConnectService/BidiStreamRPC")).await;
    assert_eq!(next(&mut socket).await["type"], "request");
    send(&mut socket, json!({"type": "message", "json": {"requestData": "ping"}})).await;
    // The response headers may come before the first message goes in: the stream is open.
    let mut before = Vec::new();
    let reply = loop {
        let event = next(&mut socket).await;
        if event["type"] == "message" {
            break event;
        }
        before.push(event["type"].as_str().unwrap().to_owned());
    };
    before.sort();
    assert_eq!(before, ["headers", "sent"]);
    assert_eq!(reply["json"], json!({"responseData": "Hello, ping"}));
    send(&mut socket, json!({"type": "message", "json": {"requestData": "pong"}})).await;
    assert_eq!(next(&mut socket).await["type"], "sent");
    assert_eq!(next(&mut socket).await["json"], json!({"responseData": "Hello, pong"}));
    send(&mut socket, json!({"type": "halfClose"})).await;
    let events = rest(&mut socket).await;
    assert_eq!(types(&events), ["halfClosed", "trailers"]);
    assert_eq!(events[1]["code"], "OK");
    assert_eq!(events[1]["trailers"]["x-message-count"], "2");
}

#[tokio::test]
async fn a_client_stream_answers_after_the_half_close() {
    let server = server(&[]).await;
    let mut socket = open(&server).await;
    send(&mut socket, start("/ConnectService/ClientStreamRPC")).await;
    for data in ["Ann", "Bob"] {
        send(&mut socket, json!({"type": "message", "json": {"requestData": data}})).await;
    }
    send(&mut socket, json!({"type": "halfClose"})).await;
    let events = rest(&mut socket).await;
    assert_eq!(types(&events), ["request", "sent", "sent", "halfClosed", "headers", "message", "trailers"]);
    let reply = events.iter().find(|event| event["type"] == "message").unwrap();
    assert_eq!(reply["json"], json!({"responseData": "Hello, Ann, Bob"}));
    assert_eq!(events.last().unwrap()["code"], "OK");
}

#[tokio::test]
async fn cancelling_mid_stream_counts_as_canceled() {
    let server = server(&[]).await;
    let mut socket = open(&server).await;
    send(&mut socket, start("/ConnectService/ServerStreamRPC")).await;
    send(&mut socket, json!({"type": "message", "json": {"count": 100, "intervalMs": 100}})).await;
    next_of(&mut socket, "message").await;
    send(&mut socket, json!({"type": "cancel"})).await;
    let events = rest(&mut socket).await;
    let cancelled = events.iter().find(|event| event["type"] == "cancelled").expect("a cancelled event");
    assert_eq!(cancelled["code"], "CANCELLED");
    timeout(PROMPTLY, server.stats.wait_until(|stats| stats.cancelled == 1)).await.unwrap();
    let series = "grpc_server_handled_total{grpc_code=\"Canceled\",grpc_method=\"ServerStreamRPC\",\
                  grpc_service=\"ConnectService\",grpc_type=\"server_stream\"}";
    assert_eq!(sample(endpoint(&server), series).await, 1.0);
}

#[tokio::test]
async fn a_dropped_socket_cancels_the_call() {
    let server = server(&[]).await;
    let mut socket = open(&server).await;
    send(&mut socket, start("/ConnectService/BidiStreamRPC")).await;
    send(&mut socket, json!({"type": "message", "json": {"requestData": "a"}})).await;
    next_of(&mut socket, "message").await;
    drop(socket);
    timeout(PROMPTLY, server.stats.wait_until(|stats| stats.cancelled == 1)).await.unwrap();
    let series = "grpc_server_handled_total{grpc_code=\"Canceled\",grpc_method=\"BidiStreamRPC\",\
                  grpc_service=\"ConnectService\",grpc_type=\"bidi_stream\"}";
    assert_eq!(sample(endpoint(&server), series).await, 1.0);
}

#[tokio::test]
async fn a_deadline_ends_a_slow_stream() {
    let server = server(&[]).await;
    let start = json!({"type": "start", "method": "/ConnectService/ServerStreamRPC", "timeoutMs": 100});
    let events = call(&server, start, json!({"count": 10, "intervalMs": 1000})).await;
    assert_eq!(events[0]["headers"]["grpc-timeout"], "100m");
    let end = events.last().unwrap();
    assert_eq!(end["type"], "trailers");
    assert_eq!(end["code"], "DEADLINE_EXCEEDED");
    assert_eq!(end["message"], "deadline exceeded");
}

#[tokio::test]
async fn an_invalid_count_shows_the_field_violation() {
    let server = server(&[]).await;
    let events = call(&server, start("/ConnectService/ServerStreamRPC"), json!({"count": 2_000_000})).await;
    let end = events.last().unwrap();
    assert_eq!(end["code"], "INVALID_ARGUMENT");
    assert_eq!(end["status"], 3);
    assert_eq!(end["message"], "count must be at most 1000000");
    assert_eq!(end["details"][0]["@type"], "type.googleapis.com/google.rpc.BadRequest");
    assert_eq!(
        end["details"][0]["fieldViolations"],
        json!([{"field": "count", "description": "count must be at most 1000000"}])
    );
}

#[tokio::test]
async fn health_and_reflection_work_without_code_per_method() {
    let server = server(&[]).await;
    let events = call(&server, start("/grpc.health.v1.Health/Check"), json!({})).await;
    let reply = events.iter().find(|event| event["type"] == "message").unwrap();
    assert_eq!(reply["json"], json!({"status": "SERVING"}));
    assert_eq!(events.last().unwrap()["code"], "OK");

    let mut socket = open(&server).await;
    send(&mut socket, start("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")).await;
    send(&mut socket, json!({"type": "message", "json": {"listServices": ""}})).await;
    let reply = next_of(&mut socket, "message").await;
    let services: Vec<&str> = reply["json"]["listServicesResponse"]["service"]
        .as_array()
        .unwrap()
        .iter()
        .map(|service| service["name"].as_str().unwrap())
        .collect();
    assert!(services.contains(&"ConnectService"), "{services:?}");
    assert!(services.contains(&"grpc.health.v1.Health"), "{services:?}");
    send(&mut socket, json!({"type": "halfClose"})).await;
    assert_eq!(rest(&mut socket).await.last().unwrap()["code"], "OK");
}

#[tokio::test]
async fn bad_input_gets_clear_error_events() {
    let server = server(&["--max-recv-message-size", "100"]).await;

    // Before the call: fatal, and the socket closes.
    let mut socket = open(&server).await;
    send(&mut socket, start("/ConnectService/Nope")).await;
    let events = rest(&mut socket).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["fatal"], true);
    assert_eq!(
        events[0]["message"],
        "unknown method \"/ConnectService/Nope\": expected /package.Service/Method, as /schema.json lists them"
    );
    let mut socket = open(&server).await;
    socket.send(Message::text("{not json")).await.unwrap();
    let events = rest(&mut socket).await;
    assert_eq!(events[0]["message"], "invalid JSON: key must be a string at line 1 column 2");
    assert_eq!(events[0]["fatal"], true);

    // During the call: the call goes on.
    let mut socket = open(&server).await;
    send(&mut socket, start("/ConnectService/BidiStreamRPC")).await;
    socket.send(Message::text("{not json")).await.unwrap();
    send(&mut socket, json!({"type": "message", "json": {"requestData": 5}})).await;
    send(&mut socket, json!({"type": "message", "json": {"requestData": "x".repeat(200)}})).await;
    send(&mut socket, json!({"type": "start", "method": "/ConnectService/UnaryRPC"})).await;
    let errors: Vec<String> = {
        let mut errors = Vec::new();
        while errors.len() < 4 {
            let event = next(&mut socket).await;
            if event["type"] == "error" {
                assert_eq!(event["fatal"], false);
                errors.push(event["message"].as_str().unwrap().to_owned());
            }
        }
        errors
    };
    assert_eq!(errors[0], "invalid JSON: key must be a string at line 1 column 2");
    assert!(errors[1].starts_with("invalid JSON for RequestMessage: "), "{}", errors[1]);
    assert_eq!(errors[2], "the message is 203 bytes, over the limit of 100 (--max-recv-message-size)");
    assert_eq!(errors[3], "the call has already started");
    send(&mut socket, json!({"type": "message", "json": {"requestData": "still here"}})).await;
    assert_eq!(next_of(&mut socket, "message").await["json"], json!({"responseData": "Hello, still here"}));
    send(&mut socket, json!({"type": "halfClose"})).await;
    assert_eq!(rest(&mut socket).await.last().unwrap()["code"], "OK");

    // After the half-close (here: after the one message of a server stream), no more messages.
    let mut socket = open(&server).await;
    send(&mut socket, start("/ConnectService/ServerStreamRPC")).await;
    send(&mut socket, json!({"type": "message", "json": {"count": 3, "intervalMs": 100}})).await;
    send(&mut socket, json!({"type": "message", "json": {"requestData": "late"}})).await;
    send(&mut socket, json!({"type": "halfClose"})).await;
    let events = rest(&mut socket).await;
    let errors: Vec<&Value> = events.iter().filter(|event| event["type"] == "error").collect();
    assert_eq!(errors[0]["message"], "the request is half-closed: no more messages");
    assert_eq!(errors[0]["fatal"], false);
    assert_eq!(errors[1]["message"], "the request is already half-closed");
    assert_eq!(errors.len(), 2);
    assert_eq!(events.iter().filter(|event| event["type"] == "message").count(), 3);
    assert_eq!(events.last().unwrap()["code"], "OK");
}

#[tokio::test]
async fn a_foreign_origin_gets_403() {
    let server = server(&[]).await;
    let error = open_with_origin(&server, "http://evil.example").await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(response) = error else {
        panic!("an HTTP refusal, not {error:?}");
    };
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn too_many_calls_are_refused() {
    let server = server(&["--playground-max-calls", "1"]).await;
    let mut first = open(&server).await;
    send(&mut first, start("/ConnectService/BidiStreamRPC")).await;
    assert_eq!(next(&mut first).await["type"], "request");
    let mut second = open(&server).await;
    send(&mut second, start("/ConnectService/BidiStreamRPC")).await;
    let events = rest(&mut second).await;
    assert_eq!(
        events,
        [json!({
            "type": "error",
            "t": 0.0,
            "fatal": true,
            "message": "too many playground calls: at most 1 run at once (--playground-max-calls); \
                        try again when one has ended",
        })]
    );
    // Once the first call ends, a new one runs.
    send(&mut first, json!({"type": "halfClose"})).await;
    let events = rest(&mut first).await;
    assert_eq!(events.last().unwrap()["code"], "OK", "{events:?}");
    let events = call(&server, start("/ConnectService/UnaryRPC"), json!({"requestData": "again"})).await;
    assert_eq!(events.last().unwrap()["code"], "OK");
}

#[tokio::test]
async fn the_page_is_served_and_off_means_404() {
    let server = server(&[]).await;
    let (status, body) = http_get(endpoint(&server), "/").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.contains("<title>gRPC playground</title>"), "{body}");
    let (status, body) = http_get(endpoint(&server), "/schema.json").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let schema: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(schema["grpcUrl"], format!("http://127.0.0.1:{}", server.addr.port()));

    let off = server_off().await;
    let (status, _) = http_get(endpoint(&off), "/").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _) = http_get(endpoint(&off), "/ws").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _) = http_get(endpoint(&off), "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
}

async fn server_off() -> TestServer {
    server(&["--playground", "off"]).await
}

#[tokio::test]
async fn works_when_the_grpc_port_requires_client_certificates() {
    let certs = TestCerts::generate();
    let server = TestServer::start_tls(&certs, true, &["--metrics-addr", "127.0.0.1:0"]).await;
    let events = call(&server, start("/ConnectService/UnaryRPC"), json!({"requestData": "mTLS"})).await;
    assert_eq!(events[4]["json"], json!({"responseData": "Hello, mTLS"}));
    assert_eq!(events.last().unwrap()["code"], "OK");
    let (_, body) = http_get(endpoint(&server), "/schema.json").await;
    let schema: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(schema["grpcUrl"], format!("https://127.0.0.1:{}", server.addr.port()));
}

#[tokio::test]
async fn playground_calls_count_in_the_metrics() {
    let server = server(&[]).await;
    call(&server, start("/ConnectService/UnaryRPC"), json!({"requestData": "m"})).await;
    let series = "grpc_server_handled_total{grpc_code=\"OK\",grpc_method=\"UnaryRPC\",\
                  grpc_service=\"ConnectService\",grpc_type=\"unary\"}";
    assert_eq!(sample(endpoint(&server), series).await, 1.0);
    let received = "grpc_server_msg_received_total{grpc_method=\"UnaryRPC\",\
                    grpc_service=\"ConnectService\",grpc_type=\"unary\"}";
    assert_eq!(sample(endpoint(&server), received).await, 1.0);
}

#[tokio::test]
async fn a_foreign_name_for_loopback_gets_403() {
    // DNS rebinding: a page of evil.test, whose name resolves to 127.0.0.1, is same-origin with itself.
    let server = server(&[]).await;
    let port = endpoint(&server).port();
    let mut request = format!("ws://{}/ws", endpoint(&server)).into_client_request().unwrap();
    request.headers_mut().insert("host", HeaderValue::from_str(&format!("evil.test:{port}")).unwrap());
    let origin = format!("http://evil.test:{port}");
    request.headers_mut().insert("origin", HeaderValue::from_str(&origin).unwrap());
    let error = connect_async(request).await.unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(response) = error else {
        panic!("an HTTP refusal, not {error:?}");
    };
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn an_oversize_websocket_message_ends_the_call() {
    // The socket takes messages up to twice the message limit plus 64 KiB: here 65736 bytes.
    let server = server(&["--max-recv-message-size", "100"]).await;
    let mut socket = open(&server).await;
    send(&mut socket, start("/ConnectService/BidiStreamRPC")).await;
    assert_eq!(next(&mut socket).await["type"], "request");
    let huge = json!({"type": "message", "json": {"requestData": "x".repeat(70_000)}});
    // The server may close while the message is still being written.
    let _ = socket.send(Message::text(huge.to_string())).await;
    loop {
        match timeout(PROMPTLY, socket.next()).await.expect("the socket ends in time") {
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
            Some(Ok(message)) => {
                let event: Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
                assert_eq!(event["type"], "headers", "{event}");
            }
        }
    }
    timeout(PROMPTLY, server.stats.wait_until(|stats| stats.cancelled == 1)).await.unwrap();
}

/// A service added with the builder (the `greeter` example) is described
/// and callable, with no code of its own.
#[tokio::test]
async fn a_service_of_its_own_is_described_and_callable() {
    use connect_server::ConnectServer;
    use greeter::{FILE_DESCRIPTOR_SET, Greeter, GreeterServer};
    let built = ConnectServer::builder(TestServer::config(&["--metrics-addr", "127.0.0.1:0"]))
        .add_service(GreeterServer::new(Greeter))
        .file_descriptor_set(FILE_DESCRIPTOR_SET)
        .unwrap()
        .build()
        .unwrap();
    let server = TestServer::start_built(built).await;
    let (_, schema) = http_get(endpoint(&server), "/schema.json").await;
    let schema: Value = serde_json::from_str(&schema).unwrap();
    let services: Vec<&str> = schema["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|service| service["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        services,
        [
            "greeter.v1.Greeter",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"
        ]
    );
    let request = &schema["messages"]["greeter.v1.SayHelloRequest"]["fields"];
    assert_eq!(
        (request[0]["jsonName"].as_str(), request[1]["jsonName"].as_str()),
        (Some("name"), Some("times"))
    );

    let events = call(&server, start("/greeter.v1.Greeter/SayHello"), json!({"name": "Ada"})).await;
    assert_eq!(types(&events), ["request", "sent", "halfClosed", "headers", "message", "trailers"]);
    assert_eq!(events[4]["json"], json!({"message": "Hello, Ada"}));
    assert_eq!(events[5]["code"], "OK");
    let events =
        call(&server, start("/greeter.v1.Greeter/SayHelloStream"), json!({"name": "Ada", "times": 2})).await;
    let messages: Vec<&Value> =
        events.iter().filter(|event| event["type"] == "message").map(|e| &e["json"]).collect();
    assert_eq!(messages, [&json!({"message": "Hello, Ada (1/2)"}), &json!({"message": "Hello, Ada (2/2)"})]);
    assert_eq!(events.last().unwrap()["code"], "OK");
}
