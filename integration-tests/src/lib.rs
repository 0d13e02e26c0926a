//! Shared helpers for the end-to-end tests in `tests/`: start a server
//! in-process on `127.0.0.1:0` (or on an in-memory listener), connect the
//! real client library to it, and shut it down with a oneshot. Either way the
//! server runs through [`ConnectServer::serve`], as the binary does.

pub mod cancel;
pub mod certs;
pub mod child;
pub mod scrape;
pub mod temp;
pub mod wire;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use clap::Parser;
use connect_proto::ConnectServiceClient;
use connect_server::{Config, ConnectServer, Connections, Listener, MemoryConnector, MemoryListener, Stats};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::transport::{Channel, Endpoint};

/// Which transport a test's server listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP on `127.0.0.1:0`.
    Tcp,
    /// An in-memory listener: no socket.
    Memory,
}

/// Defines, for each named `async fn(Transport)`, a module of the same name
/// with two tests: `tcp` and `in_memory`.
#[macro_export]
macro_rules! on_both_transports {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn tcp() {
                super::$name($crate::Transport::Tcp).await;
            }

            #[tokio::test]
            async fn in_memory() {
                super::$name($crate::Transport::Memory).await;
            }
        }
    )*};
}

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
    /// Where it serves `/metrics`, when started with `--metrics-addr 127.0.0.1:0`.
    pub metrics_addr: Option<SocketAddr>,
    /// How to reach it when it listens in memory rather than on `addr`.
    memory: Option<MemoryConnector>,
    /// The server itself, for what only it can do (reload).
    server: ConnectServer,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), connect_server::Error>>,
}

impl TestServer {
    /// Starts a server with default flags (stats logging off).
    pub async fn start() -> Self {
        Self::start_with_args(&[]).await
    }

    /// Starts a server with `args` as if given on its command line.
    /// The metrics endpoint is off unless `args` has `--metrics-addr`.
    pub async fn start_with_args(args: &[&str]) -> Self {
        Self::start_with_config(Self::config(args)).await
    }

    /// Starts a server with `args` on `transport`.
    pub async fn start_over(transport: Transport, args: &[&str]) -> Self {
        match transport {
            Transport::Tcp => Self::start_with_args(args).await,
            Transport::Memory => Self::start_in_memory(args).await,
        }
    }

    /// Starts a server with owned `args`, as [`start_with_args`](Self::start_with_args).
    pub async fn start_with_owned_args(args: &[String]) -> Self {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Self::start_with_args(&args).await
    }

    /// Starts a TLS server with the certificates of `certs` (client certificates
    /// required with `mtls`) and `args`.
    pub async fn start_tls(certs: &certs::TestCerts, mtls: bool, args: &[&str]) -> Self {
        let mut argv = certs.server_args(mtls);
        argv.extend(args.iter().map(|arg| (*arg).to_owned()));
        Self::start_with_owned_args(&argv).await
    }

    /// Starts a server with `config`, bound to `127.0.0.1:0` whatever `config.addr` says.
    pub async fn start_with_config(config: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        Self::start_on(listener, config).await
    }

    /// Starts a server with `config` on a listener the test bound itself.
    pub async fn start_on(listener: TcpListener, config: Config) -> Self {
        let addr = listener.local_addr().expect("local addr");
        Self::serve(listener, addr, None, Self::server(config)).await
    }

    /// The configuration of [`start_with_args`](Self::start_with_args): the test defaults, then `args`.
    pub fn config(args: &[&str]) -> Config {
        let mut argv = vec!["connect-server", "--addr", "127.0.0.1:0", "--stats-interval", "0"];
        if !args.contains(&"--metrics-addr") {
            argv.extend_from_slice(&["--metrics-addr", "off"]);
        }
        argv.extend_from_slice(args);
        Config::parse_from(argv)
    }

    /// Serves `server`, built by the test (with its own services), on `127.0.0.1:0`.
    pub async fn start_built(server: ConnectServer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        Self::serve(listener, addr, None, server).await
    }

    /// Starts a server with default flags and `args` on an in-memory listener:
    /// no socket, the same serving path. Reach it with [`channel`](Self::channel)
    /// or [`client`](Self::client); `addr` and `url` name no real address.
    pub async fn start_in_memory(args: &[&str]) -> Self {
        let mut argv = vec!["connect-server", "--stats-interval", "0", "--metrics-addr", "off"];
        argv.extend_from_slice(args);
        let (listener, connector) = MemoryListener::new();
        let addr = listener.local_addr().expect("local addr");
        Self::serve(listener, addr, Some(connector), Self::server(Config::parse_from(argv))).await
    }

    /// `ConnectService`'s server with `config`.
    fn server(config: Config) -> ConnectServer {
        ConnectServer::new(config).expect("a valid configuration")
    }

    async fn serve<L: Listener>(
        listener: L,
        addr: SocketAddr,
        memory: Option<MemoryConnector>,
        server: ConnectServer,
    ) -> Self {
        let stats = server.stats();
        let connections = server.connections().clone();
        let metrics_addr = server.metrics_addr();
        let (shutdown, shutdown_rx) = oneshot::channel();
        let task = tokio::spawn(server.clone().serve(vec![listener], async {
            let _ = shutdown_rx.await;
        }));
        tokio::time::timeout(PROMPTLY, server.ready()).await.expect("the server is ready in time");
        Self { addr, stats, connections, metrics_addr, memory, server, shutdown: Some(shutdown), task }
    }

    /// Reads the TLS files and the token file again, as SIGHUP does.
    pub fn reload(&self) -> Result<(), connect_server::Error> {
        self.server.reload()
    }

    /// The server's address as a client URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The server's address as a TLS client URL (the test certificate names `127.0.0.1`).
    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// A plaintext channel to this server, over TCP or in memory.
    pub async fn channel(&self) -> Channel {
        self.try_channel().await.expect("connect to test server")
    }

    /// A plaintext channel to this server, or why it cannot connect.
    pub async fn try_channel(&self) -> Result<Channel, tonic::transport::Error> {
        let Some(memory) = self.memory.clone() else {
            return Channel::from_shared(self.url()).expect("test url").connect().await;
        };
        let connector = tower::service_fn(move |_| {
            let memory = memory.clone();
            async move { memory.connect().map(TokioIo::new) }
        });
        Endpoint::from_static("http://in-memory.test").connect_with_connector(connector).await
    }

    /// A TLS channel to this server, trusting `certs`' CA; with `identity`, presenting the client certificate.
    pub async fn tls_channel(
        &self,
        certs: &certs::TestCerts,
        identity: bool,
    ) -> Result<Channel, tonic::transport::Error> {
        Channel::from_shared(self.https_url())
            .expect("test url")
            .tls_config(certs.client_tls(identity))?
            .connect()
            .await
    }

    /// A client connected to this server.
    pub async fn client(&self) -> ConnectServiceClient<Channel> {
        ConnectServiceClient::new(self.channel().await)
    }

    /// A client whose calls are reset (`RST_STREAM(CANCEL)`) when `token` is cancelled.
    pub async fn cancellable_client(
        &self,
        token: tokio_util::sync::CancellationToken,
    ) -> cancel::CancellableClient {
        cancel::cancellable(self.channel().await, token)
    }

    /// Starts the graceful shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Shuts down and waits for the server to stop; returns what `serve` returned.
    pub async fn stop(mut self) -> Result<(), connect_server::Error> {
        self.begin_shutdown();
        (&mut self.task).await.expect("server task panicked")
    }

    /// Waits for the server task to end (after [`begin_shutdown`](Self::begin_shutdown)).
    pub async fn join(&mut self) -> Result<(), connect_server::Error> {
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
