//! The `connect-client` binary itself, against an in-process server.

use integration_tests::{TestServer, run_client_binary};

fn stdout(output: &std::process::Output) -> &str {
    std::str::from_utf8(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_prints_the_greeting() {
    let server = TestServer::start().await;
    let url = server.url();
    let output =
        tokio::task::spawn_blocking(move || run_client_binary(&["--addr", &url, "unary"])).await.unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), "Response from server: Hello, People\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stream_prints_ten_lines_like_the_original() {
    let server = TestServer::start().await;
    let url = server.url();
    let output = tokio::task::spawn_blocking(move || run_client_binary(&["--addr", &url, "server-stream"]))
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let expected: String =
        (1..=10).map(|i| format!("Response from server: Hello, People: server({i}) \n")).collect();
    assert_eq!(stdout(&output), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_rpc_prints_its_status_and_exits_1() {
    let server = TestServer::start().await;
    let url = server.url();
    let output = tokio::task::spawn_blocking(move || {
        run_client_binary(&["--addr", &url, "server-stream", "--count", "2000000"])
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().next(), Some("RPC failed: INVALID_ARGUMENT: count must be at most 1000000"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_one_line_and_exit_3() {
    // Bind and drop to find a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let output =
        tokio::task::spawn_blocking(move || run_client_binary(&["--addr", &url, "unary"])).await.unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with(&format!("cannot connect to http://127.0.0.1:{port}: ")), "{stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
}
