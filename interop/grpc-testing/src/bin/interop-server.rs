//! `interop-server`: gRPC's interop test server (`grpc.testing.TestService`)
//! on connect-server's serving stack, with the interop flags:
//!
//! ```console
//! $ interop-server --port 0 --host 127.0.0.1
//! Server listening on 127.0.0.1:40241
//! $ interop-server --port 8443 --use_tls true --tls_cert_file server1.pem --tls_key_file server1.key
//! ```
//!
//! Port 0 picks a free port; the line above is printed once it accepts. It
//! serves through connect-server's builder with its defaults (every protocol,
//! health, reflection, connection and HTTP/2 limits, message sizes, the
//! observe layer and access log on stdout); the metrics endpoint and the
//! playground are off unless `--admin_addr HOST:PORT` turns them on.

use std::{net::IpAddr, path::PathBuf};

use anyhow::Context as _;
use clap::{ArgAction, Parser};
use connect_server::{Config, ConnectServer, logging};

/// The interop server's flags (gRPC's names).
#[derive(Debug, Parser)]
#[command(about = "gRPC's interop test server on connect-server's stack")]
struct Args {
    /// Port to listen on (0: any free port).
    #[arg(long)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    host: IpAddr,
    /// Serve TLS with --tls_cert_file and --tls_key_file.
    #[arg(long = "use_tls", action = ArgAction::Set, default_value_t = false)]
    use_tls: bool,
    /// Server certificate chain (PEM).
    #[arg(long = "tls_cert_file")]
    tls_cert_file: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long = "tls_key_file")]
    tls_key_file: Option<PathBuf>,
    /// Serve `/metrics` and the playground here (port 0: any free port); off by default.
    #[arg(long = "admin_addr")]
    admin_addr: Option<std::net::SocketAddr>,
}

impl Args {
    /// connect-server's configuration for these flags: its defaults otherwise.
    fn config(&self) -> anyhow::Result<Config> {
        let addr = std::net::SocketAddr::new(self.host, self.port).to_string();
        let admin = self.admin_addr.map_or_else(|| "off".to_owned(), |addr| addr.to_string());
        let mut flags = vec![
            "interop-server".into(),
            "--addr".into(),
            addr,
            "--workers".into(),
            "1".into(),
            "--metrics-addr".into(),
            admin,
        ];
        if self.use_tls {
            let cert = self.tls_cert_file.as_ref().context("--use_tls needs --tls_cert_file")?;
            let key = self.tls_key_file.as_ref().context("--use_tls needs --tls_key_file")?;
            flags.extend([
                "--tls-cert".into(),
                cert.display().to_string(),
                "--tls-key".into(),
                key.display().to_string(),
            ]);
        }
        Ok(Config::try_parse_from(flags)?)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let config = Args::parse().config()?;
    let _log = logging::init(config.log_format);
    grpc_testing::server::add_to(ConnectServer::builder(config))?.build()?.run().await?;
    Ok(())
}
