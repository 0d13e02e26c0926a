//! Shared helpers for the end-to-end tests in `tests/`: start a server
//! in-process on `127.0.0.1:0`, connect the real client library to it, and
//! shut it down with a oneshot.

pub mod child;
pub mod raw;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use clap::Parser;
use connect_proto::ConnectServiceClient;
use connect_server::{Config, ConnectServer, Stats, incoming::Connections};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::transport::Channel;

/// How long a test waits for something the server should do promptly.
pub const PROMPTLY: Duration = Duration::from_secs(5);

/// A server running in this process.
#[derive(Debug)]
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its live counters.
    pub stats: Arc<Stats>,
    /// Its open connections and their limits.
    pub connections: Connections,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    /// Starts a server with default flags (stats logging off).
    pub async fn start() -> Self {
        Self::start_with_args(&[]).await
    }

    /// Starts a server with `args` as if given on its command line.
    pub async fn start_with_args(args: &[&str]) -> Self {
        let mut argv = vec!["connect-server", "--addr", "127.0.0.1:0", "--stats-interval", "0"];
        argv.extend_from_slice(args);
        Self::start_with_config(Config::parse_from(argv)).await
    }

    /// Starts a server with `config`, bound to `127.0.0.1:0` whatever `config.addr` says.
    pub async fn start_with_config(config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let server = ConnectServer::new(config);
        let stats = server.stats();
        let connections = server.connections().clone();
        let (shutdown, shutdown_rx) = oneshot::channel();
        let task = tokio::spawn(server.serve(listener, async {
            let _ = shutdown_rx.await;
        }));
        Self { addr, stats, connections, shutdown: Some(shutdown), task }
    }

    /// The server's address as a client URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client connected to this server.
    pub async fn client(&self) -> ConnectServiceClient<Channel> {
        ConnectServiceClient::connect(self.url()).await.expect("connect to test server")
    }

    /// Starts the graceful shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Shuts down and waits for the server to stop; returns what `serve` returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.begin_shutdown();
        (&mut self.task).await.expect("server task panicked")
    }

    /// Waits for the server task to end (after [`begin_shutdown`](Self::begin_shutdown)).
    pub async fn join(&mut self) -> anyhow::Result<()> {
        (&mut self.task).await.expect("server task panicked")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A request carrying only `request_data`.
pub fn request(data: &str) -> connect_proto::RequestMessage {
    connect_proto::RequestMessage { request_data: data.to_owned(), ..Default::default() }
}

/// Asserts that a fresh client on a new connection still gets a normal answer.
pub async fn assert_still_serving(server: &TestServer) {
    let mut client = server.client().await;
    let response = tokio::time::timeout(PROMPTLY, client.unary_rpc(request("still here")))
        .await
        .expect("answer within PROMPTLY")
        .expect("unary call succeeds")
        .into_inner();
    assert_eq!(response.response_data, "Hello, still here");
}

/// `small` in the default test run, `full` when `CONNECT_FULL_SCALE=1` (set by `scripts/floods`).
pub fn scale(small: usize, full: usize) -> usize {
    if std::env::var_os("CONNECT_FULL_SCALE").is_some_and(|v| v == "1") { full } else { small }
}
