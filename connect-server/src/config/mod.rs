//! Configuring the server: its flags and environment variables ([`Config`]
//! and the headings of its help), turned once into the `Settings` that the
//! rest of the server runs with. Nothing below this module sees a flag.

mod auth;
mod limits;
mod playground;
mod settings;
mod tls;
mod web;

pub use auth::AuthArgs;
pub(crate) use auth::read_token_file;
pub use limits::LimitArgs;
pub use playground::{PlaygroundArgs, Switch};
pub(crate) use settings::{ReloadSettings, Settings};
pub(crate) use tls::CertificateInfo;
pub use tls::TlsArgs;
pub use web::WebArgs;

use std::{fmt, net::SocketAddr, num::NonZeroUsize, str::FromStr, time::Duration};

use clap::Parser;

use crate::telemetry::LogFormat;

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

    /// After a shutdown signal, how long to keep accepting and serving while health reports
    /// NOT_SERVING (so balancers stop sending calls) before the drain begins.
    #[arg(long, env = "CONNECT_LAME_DUCK", default_value = "0s", value_parser = humantime::parse_duration)]
    pub lame_duck: Duration,

    /// While requests arrive less than this apart, a worker polls its sockets
    /// instead of sleeping between them: lower latency for up to a core of CPU per
    /// worker (e.g. `100us`, for dedicated cores); 0, the default, turns it off.
    #[arg(long, env = "CONNECT_BUSY_POLL", default_value = "0s", value_parser = humantime::parse_duration)]
    pub busy_poll: Duration,

    /// TLS and mTLS.
    #[command(flatten)]
    pub tls: TlsArgs,

    /// Bearer-token authentication.
    #[command(flatten)]
    pub auth: AuthArgs,

    /// Reload the TLS files and the token file when something changes in their directories (`on`),
    /// or only on SIGHUP (`off`: for volumes whose changes raise no file events, such as NFS, or to
    /// apply a rotation at a chosen moment).
    #[arg(long, env = "CONNECT_RELOAD_WATCH", value_enum, default_value_t = Switch::On, help_heading = "Reload")]
    pub reload_watch: Switch,

    /// HTTP/2, connection and message limits.
    #[command(flatten)]
    pub limits: LimitArgs,

    /// The protocols served, and CORS.
    #[command(flatten)]
    pub web: WebArgs,

    /// The browser playground on the metrics endpoint.
    #[command(flatten)]
    pub playground: PlaygroundArgs,

    /// Name sent in every response's `x-served-by` header; default `hostname:port`.
    #[arg(long, env = "CONNECT_SERVER_ID")]
    pub server_id: Option<String>,

    /// Address of the Prometheus endpoint (`/metrics`), or `off`.
    #[arg(long, env = "CONNECT_METRICS_ADDR", default_value = "127.0.0.1:9464")]
    pub metrics_addr: MetricsAddr,

    /// Where to export OpenTelemetry traces over OTLP/gRPC (e.g. `http://localhost:4317`);
    /// default: `OTEL_EXPORTER_OTLP_ENDPOINT`, and without it tracing is off. The sampler and
    /// the service name come from `OTEL_TRACES_SAMPLER(_ARG)` and `OTEL_SERVICE_NAME`.
    #[arg(long)]
    pub otlp_endpoint: Option<String>,

    /// Log line format (`RUST_LOG` sets what is logged).
    #[arg(long, env = "CONNECT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Join the listeners of another server already on `--addr` (`SO_REUSEPORT`), as a
    /// hand-over restart does; without it, a port in use is an error.
    #[arg(long, env = "CONNECT_SHARE_PORT")]
    pub share_port: bool,

    /// Worker threads, each a single-threaded runtime with its own listener
    /// (default: the cores this process may run on, which follows `taskset`).
    #[arg(long, env = "CONNECT_WORKERS")]
    pub workers: Option<NonZeroUsize>,
}

/// Where to serve metrics: an address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsAddr {
    /// No metrics endpoint.
    Off,
    /// Serve `/metrics` here.
    At(SocketAddr),
}

impl FromStr for MetricsAddr {
    type Err = std::net::AddrParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.eq_ignore_ascii_case("off") { Ok(Self::Off) } else { text.parse().map(Self::At) }
    }
}

impl fmt::Display for MetricsAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::At(addr) => addr.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The spin is billed to a container's CPU quota, so the safe default is off.
    #[test]
    fn busy_polling_is_off_by_default_and_one_flag_away() {
        let default = Config::parse_from(["connect-server"]);
        assert_eq!(default.busy_poll, Duration::ZERO);
        let on = Config::parse_from(["connect-server", "--busy-poll", "100us"]);
        assert_eq!(on.busy_poll, Duration::from_micros(100));
    }
}
