//! `interop-client`: runs one of gRPC's interop test cases against a
//! `grpc.testing.TestService` server, with the interop flags:
//!
//! ```console
//! $ interop-client --server_port 8080 --test_case large_unary
//! OK: large_unary
//! $ interop-client --server_port 8443 --use_tls true --use_test_ca true --ca_file ca.pem \
//!     --server_host_override foo.test.google.fr --test_case ping_pong
//! ```
//!
//! Exits 0 when the case passes, 1 with what went wrong when it fails.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use clap::{ArgAction, Parser};
use grpc_testing::client::{self, Target, Tls};

/// The interop client's flags (gRPC's names).
#[derive(Debug, Parser)]
#[command(about = "gRPC's interop test client on connect-client's channel")]
struct Args {
    /// Server host to connect to.
    #[arg(long = "server_host", default_value = "localhost")]
    server_host: String,
    /// Server port.
    #[arg(long = "server_port")]
    server_port: u16,
    /// The case to run.
    #[arg(long = "test_case", value_parser = clap::builder::PossibleValuesParser::new(client::CASES))]
    test_case: String,
    /// Connect with TLS.
    #[arg(long = "use_tls", action = ArgAction::Set, default_value_t = false)]
    use_tls: bool,
    /// Trust the test CA (--ca_file) instead of the system's roots.
    #[arg(long = "use_test_ca", action = ArgAction::Set, default_value_t = false)]
    use_test_ca: bool,
    /// The test CA certificate (PEM), e.g. the Ruby gem's `src/ruby/spec/testdata/ca.pem`.
    #[arg(long = "ca_file")]
    ca_file: Option<PathBuf>,
    /// The name the server's certificate is checked against, instead of --server_host.
    #[arg(long = "server_host_override")]
    server_host_override: Option<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("FAILED: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let tls = if args.use_tls {
        let ca = if args.use_test_ca {
            Some(args.ca_file.clone().context("--use_test_ca needs --ca_file")?)
        } else {
            None
        };
        Some(Tls { ca, host_override: args.server_host_override.clone().filter(|name| !name.is_empty()) })
    } else {
        None
    };
    let target = Target { host: args.server_host, port: args.server_port, tls };
    let channel = client::connect(&target).await?;
    client::run(&args.test_case, channel).await.with_context(|| format!("{} failed", args.test_case))?;
    println!("OK: {}", args.test_case);
    Ok(())
}
