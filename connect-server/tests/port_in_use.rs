//! A port another server listens on: refused, unless sharing it is asked for.
//! (Here rather than in `integration-tests` because it runs the binary.)

use std::{process::Stdio, time::Duration};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    time::timeout,
};

const PROMPTLY: Duration = Duration::from_secs(10);

fn server(addr: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_connect-server"));
    command
        .args(["--addr", addr, "--metrics-addr", "off", "--stats-interval", "0", "--workers", "2"])
        .args(args)
        .env_remove("CONNECT_SHARE_PORT")
        // anyhow would add a backtrace to the error line.
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Starts a server and waits for its listening line; returns it and its address.
async fn listening(addr: &str, args: &[&str]) -> (Child, String) {
    let mut child = server(addr, args).spawn().expect("start connect-server");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = timeout(PROMPTLY, lines.next_line()).await.expect("started in time").unwrap().unwrap();
    let addr = first.strip_prefix("Server listening on ").expect("the listening line").to_owned();
    (child, addr)
}

#[tokio::test]
async fn a_second_server_on_the_same_port_fails_loudly() {
    let (_first, addr) = listening("127.0.0.1:0", &[]).await;
    let second = timeout(PROMPTLY, server(&addr, &[]).output()).await.expect("exits in time").unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&second.stderr),
        format!("Error: cannot listen on {addr}: address already in use (another process is serving it)\n")
    );
    assert!(second.stdout.is_empty(), "nothing announced: {:?}", String::from_utf8_lossy(&second.stdout));
}

#[tokio::test]
async fn share_port_joins_the_server_already_there() {
    let (_first, addr) = listening("127.0.0.1:0", &[]).await;
    let (_second, joined) = listening(&addr, &["--share-port"]).await;
    assert_eq!(joined, addr);
}
