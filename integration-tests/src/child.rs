//! The server binary as a child process, for the scripts that measure it from
//! outside: its RSS and open files come from `/proc/<pid>`.

use std::{
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    task::JoinHandle,
};

/// A `connect-server` process on `127.0.0.1:0`.
#[derive(Debug)]
pub struct ChildServer {
    /// The process.
    pub child: Child,
    /// Its address, `127.0.0.1:port`.
    pub addr: String,
    /// Its standard output after the first line, read continuously so that
    /// the server never blocks on a full pipe.
    output: Arc<Mutex<Vec<String>>>,
    reader: JoinHandle<()>,
}

impl ChildServer {
    /// Starts the binary named by `CONNECT_SERVER_BIN` with `args`, and waits for its listening line.
    pub async fn spawn(args: &[&str]) -> Self {
        let bin = std::env::var("CONNECT_SERVER_BIN").expect("CONNECT_SERVER_BIN names the server binary");
        let mut child = Command::new(bin)
            .args(["--addr", "127.0.0.1:0", "--stats-interval", "0", "--metrics-addr", "off"])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the server");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = stdout.next_line().await.expect("read stdout").expect("a first line");
        let addr = first.strip_prefix("Server listening on ").expect("the listening line").to_owned();
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&output);
        let reader = tokio::spawn(async move {
            while let Ok(Some(line)) = stdout.next_line().await {
                sink.lock().expect("output lock").push(line);
            }
        });
        Self { child, addr, output, reader }
    }

    /// Waits for the process to exit; returns its status and the output lines after the first.
    pub async fn wait(mut self) -> (ExitStatus, Vec<String>) {
        let status = self.child.wait().await.expect("wait for the server");
        let _ = (&mut self.reader).await;
        let lines = std::mem::take(&mut *self.output.lock().expect("output lock"));
        (status, lines)
    }

    /// The lines the server has printed after the first one so far.
    pub fn output(&self) -> Vec<String> {
        self.output.lock().expect("output lock").clone()
    }

    /// How many lines the server has printed after the first one so far.
    pub fn output_lines(&self) -> usize {
        self.output.lock().expect("output lock").len()
    }

    /// The server as a client URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Resident memory in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// Open file descriptors.
    pub fn open_files(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).expect("proc fd").count()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Sends the signal named `name` (`TERM`, `HUP`, ...).
    pub fn signal(&self, name: &str) {
        let status =
            std::process::Command::new("kill").args([&format!("-{name}"), &self.pid().to_string()]).status();
        assert!(status.expect("run kill").success());
    }
}
