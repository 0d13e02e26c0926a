//! Command-line flags and environment variables of the server.

use std::{net::SocketAddr, time::Duration};

use clap::Parser;

/// Server configuration; every flag can also be set by its environment variable.
#[derive(Debug, Clone, Parser)]
#[command(name = "connect-server", version, about = "The ConnectService gRPC server")]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "CONNECT_ADDR", default_value = "[::]:50051")]
    pub addr: SocketAddr,

    /// Most responses one ServerStreamRPC call may ask for (`count`).
    #[arg(long, env = "CONNECT_MAX_STREAM_COUNT", default_value_t = 1_000_000)]
    pub max_stream_count: u32,

    /// Most milliseconds a ServerStreamRPC call may ask to pause between responses (`interval_ms`).
    #[arg(long, env = "CONNECT_MAX_INTERVAL_MS", default_value_t = 60_000)]
    pub max_interval_ms: u32,

    /// Most bytes of `request_data` one ClientStreamRPC call may send in all.
    #[arg(long, env = "CONNECT_MAX_CLIENT_STREAM_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_client_stream_bytes: usize,

    /// How often to log a one-line summary of RPCs served; 0 turns it off.
    #[arg(long, env = "CONNECT_STATS_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub stats_interval: Duration,

    /// How long in-flight RPCs may run after a shutdown signal before they are ended.
    #[arg(long, env = "CONNECT_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    /// Most client connections served at once; beyond it, accepting pauses until one closes.
    #[arg(long, env = "CONNECT_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// How long a new connection may take to send its first 24 bytes (the HTTP/2 preface).
    #[arg(long, env = "CONNECT_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub handshake_timeout: Duration,

    /// How long a connection may stay open with no call in flight before it is closed; 0 turns it off.
    #[arg(long, env = "CONNECT_IDLE_TIMEOUT", default_value = "5m", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self::parse_from(["connect-server"])
    }
}
