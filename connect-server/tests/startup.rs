//! Starting the `connect-server` binary with a bad flag: the error comes
//! before anything is announced as listening, and the exit code says so.

use std::{process::Stdio, time::Duration};

use tokio::{process::Command, time::timeout};

#[tokio::test]
async fn a_missing_certificate_fails_before_the_listening_line() {
    let child = Command::new(env!("CARGO_BIN_EXE_connect-server"))
        .args(["--addr", "127.0.0.1:0", "--metrics-addr", "off", "--workers", "2"])
        .args(["--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"])
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = timeout(Duration::from_secs(10), child.wait_with_output()).await.expect("exits").unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "", "nothing announced");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "Error: cannot read --tls-cert /nonexistent/cert.pem: No such file or directory (os error 2)\n"
    );
}
