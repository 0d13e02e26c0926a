//! `connect-server`: serves `ConnectService` on `[::]:50051` (see `--help`).
//!
//! Runs one worker thread per available core (`--workers`), each with its own
//! single-threaded runtime and listener; this thread handles signals, the
//! metrics endpoint, the periodic summary and the shutdown timer.

use clap::Parser;
use connect_server::{Config, ConnectServer, logging};

/// Every call allocates its messages and strings; mimalloc's per-thread heaps
/// suit one runtime per core and cost much less per allocation than glibc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let log = logging::init(config.log_format);

    let count = config.workers.unwrap_or_else(connect_server::default_count);
    let listeners = connect_server::bind(config.addr, count, config.share_port)?;
    let addr = listeners[0].local_addr()?;
    let server = ConnectServer::new(config)?;
    let serving = server.clone().serve(listeners, shutdown());
    tokio::pin!(serving);
    tokio::select! {
        result = &mut serving => return Ok(result?),
        // Printed once every worker accepts: scripts and tests wait for this line.
        () = server.ready() => println!("Server listening on {addr}"),
    }
    serving.await?;
    // Every call's line before the farewell.
    drop(log);
    println!("Bye");
    Ok(())
}

/// The first signal starts the graceful shutdown; a second one means "now".
async fn shutdown() {
    connect_server::signal().await;
    tokio::spawn(async {
        connect_server::signal().await;
        eprintln!("second signal: exiting at once");
        logging::flush();
        std::process::exit(130);
    });
}
