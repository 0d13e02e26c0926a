//! The protocols served on the port and the pages that may call it, as flags.

use clap::Args;

use crate::web::Protocol;

/// Web protocols and CORS; every flag also has an environment variable.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Protocols")]
pub struct WebArgs {
    /// Protocols served on `--addr`, comma-separated: gRPC over HTTP/2, and
    /// gRPC-Web and Connect over HTTP/1.1 or HTTP/2. A protocol left out is
    /// answered like an unknown content type (HTTP 415); with `grpc` alone
    /// the port speaks HTTP/2 only.
    #[arg(
        long,
        env = "CONNECT_PROTOCOLS",
        value_enum,
        value_delimiter = ',',
        default_value = "grpc,grpc-web,connect"
    )]
    pub protocols: Vec<Protocol>,

    /// An origin (`https://app.example.com`) whose pages may call the server
    /// from a browser (CORS); repeatable, or `*` for any. None: no CORS headers.
    #[arg(long = "cors-allow-origin", env = "CONNECT_CORS_ALLOW_ORIGIN", value_delimiter = ',')]
    pub cors_allow_origins: Vec<String>,
}
