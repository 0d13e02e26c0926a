//! `connect-server`: serves `ConnectService` on `[::]:50051` (see `--help`).
//!
//! Runs one worker thread per available core (`--workers`), each with its own
//! single-threaded runtime and listener; this thread handles signals, the
//! periodic summary and the shutdown timer.

use clap::Parser;
use connect_server::{Config, ConnectServer, logging, shutdown, workers};

/// Every call allocates its messages and strings; mimalloc's per-thread heaps
/// suit one runtime per core and cost much less per allocation than glibc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let log = logging::init(config.log_format);

    let count = config.workers.unwrap_or_else(workers::default_count);
    let listeners = workers::bind(config.addr, count)?;
    let addr = listeners[0].local_addr()?;
    let workers = workers::start(ConnectServer::new(config), listeners).await?;
    // Printed once every worker accepts: scripts and tests wait for this line.
    println!("Server listening on {addr}");

    let shutdown = async {
        shutdown::signal().await;
        // A second signal means "now": skip the drain.
        tokio::spawn(async {
            shutdown::signal().await;
            eprintln!("second signal: exiting at once");
            logging::flush();
            std::process::exit(130);
        });
    };
    workers.run(shutdown).await?;
    // Every call's line before the farewell.
    drop(log);
    println!("Bye");
    Ok(())
}
