//! Command-line arguments of `connect-client`.

use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::metadata::{Header, parse_header};

/// Calls `ConnectService`; every option can also be set by its environment variable.
#[derive(Debug, Clone, Parser)]
#[command(name = "connect-client", version, about = "Command-line client for ConnectService")]
pub struct Cli {
    /// Server address.
    #[arg(long, env = "CONNECT_SERVER", default_value = "http://localhost:50051", global = true)]
    pub addr: String,

    /// Deadline for the call, sent as `grpc-timeout` (e.g. `500ms`, `5s`).
    #[arg(long, env = "CONNECT_TIMEOUT", value_parser = humantime::parse_duration, global = true)]
    pub timeout: Option<Duration>,

    /// Most time to spend connecting to the server.
    #[arg(long, env = "CONNECT_CONNECT_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration, global = true)]
    pub connect_timeout: Duration,

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
}
