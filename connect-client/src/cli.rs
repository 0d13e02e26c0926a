//! Command-line arguments of `connect-client`.

use std::{path::PathBuf, time::Duration};

use clap::{Parser, Subcommand, ValueEnum};

use crate::metadata::{Header, parse_header};

/// Calls `ConnectService`; every option can also be set by its environment variable.
#[derive(Debug, Clone, Parser)]
#[command(name = "connect-client", version, about = "Command-line client for ConnectService")]
pub struct Cli {
    /// Server address; repeat it (or separate with commas) to balance calls over several replicas.
    #[arg(
        long,
        env = "CONNECT_SERVER",
        default_value = "http://localhost:50051",
        value_delimiter = ',',
        global = true
    )]
    pub addr: Vec<String>,

    /// Deadline for the call, sent as `grpc-timeout` (e.g. `500ms`, `5s`).
    #[arg(long, env = "CONNECT_TIMEOUT", value_parser = humantime::parse_duration, global = true)]
    pub timeout: Option<Duration>,

    /// Most time to spend connecting to the server.
    #[arg(long, env = "CONNECT_CONNECT_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration, global = true)]
    pub connect_timeout: Duration,

    /// CA certificate (PEM) to trust for `https://` addresses (there are no built-in roots).
    #[arg(long, env = "CONNECT_CA", global = true)]
    pub ca: Option<PathBuf>,

    /// Client certificate (PEM) for mTLS; needs `--key`.
    #[arg(long, env = "CONNECT_CERT", requires = "key", global = true)]
    pub cert: Option<PathBuf>,

    /// Private key (PEM) of the client certificate.
    #[arg(long, env = "CONNECT_KEY", requires = "cert", global = true)]
    pub key: Option<PathBuf>,

    /// Bearer token sent as `authorization: Bearer <token>` on ConnectService calls.
    #[arg(long, env = "CONNECT_AUTH_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,

    /// Compress requests with this encoding (responses are then asked for compressed the same way).
    #[arg(long, env = "CONNECT_COMPRESS", value_enum, global = true)]
    pub compress: Option<Compression>,
    /// Balancing over several replicas and waiting for them.
    #[command(flatten)]
    pub balance: crate::balance::BalanceArgs,

    /// Retrying idempotent calls.
    #[command(flatten)]
    pub retry: crate::retry::RetryArgs,

    /// Repeating the unary call and tallying a response header.
    #[command(flatten)]
    pub repeat: crate::repeat::RepeatArgs,
    /// Request metadata `key: value` (repeatable); `-bin` keys take base64 values.
    #[arg(short = 'H', long = "header", value_name = "KEY: VALUE", value_parser = parse_header, global = true)]
    pub headers: Vec<Header>,

    /// Print the response headers and trailers to stderr (`header k: v`, `trailer k: v`).
    #[arg(short, long, env = "CONNECT_VERBOSE", global = true)]
    pub verbose: bool,

    /// What to call.
    #[command(subcommand)]
    pub command: Command,
}

/// The calls the client can make.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// One request, one response.
    Unary {
        /// The request data.
        #[arg(default_value = "People")]
        data: String,
    },
    /// One request, a stream of responses.
    ServerStream {
        /// The request data.
        #[arg(default_value = "People")]
        data: String,
        /// How many responses to ask for (0: the server's default of 10).
        #[arg(long, default_value_t = 0)]
        count: u32,
        /// Pause between responses, in milliseconds.
        #[arg(long, default_value_t = 0)]
        interval_ms: u32,
    },
    /// A stream of requests (the arguments, or one per stdin line), one response.
    ClientStream {
        /// The request data; read from stdin, one message per line, when empty.
        data: Vec<String>,
    },
    /// Sends stdin lines as requests and prints each reply as it arrives.
    Bidi,
    /// Asks `grpc.health.v1` for a service's status and prints it; exits 1 unless `SERVING`.
    Health {
        /// The service to ask about; empty: the whole server.
        #[arg(default_value = "")]
        service: String,
    },
    /// Lists the server's services through gRPC reflection.
    List,
}

/// Message compression the client can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compression {
    /// gzip.
    Gzip,
    /// Zstandard.
    Zstd,
}
