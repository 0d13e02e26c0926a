//! `connect-server`: serves `ConnectService` on `[::]:50051` (see `--help`).

use clap::Parser;
use connect_server::{Config, ConnectServer, logging, shutdown};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let _log_writer = logging::init(config.log_format);

    let listener = TcpListener::bind(config.addr).await?;
    println!("Server listening on {}", listener.local_addr()?);

    let shutdown = async {
        shutdown::signal().await;
        // A second signal means "now": skip the drain.
        tokio::spawn(async {
            shutdown::signal().await;
            eprintln!("second signal: exiting at once");
            std::process::exit(130);
        });
    };
    ConnectServer::new(config).serve(listener, shutdown).await?;
    println!("Bye");
    Ok(())
}
