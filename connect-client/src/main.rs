//! `connect-client`: calls `ConnectService` from the command line (see `--help`).
//!
//! Exit codes: 0 success, 1 the RPC failed (its status is printed), 2 bad
//! usage (flags clap refuses, or that cannot be used together), 3 the server
//! could not be reached, 4 any other error (including flags that only fail
//! once used, such as an invalid `--addr`).

use std::process::ExitCode;

use clap::Parser;
use connect_client::Cli;

/// `bench` allocates for every call; mimalloc keeps that cost well below glibc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    match connect_client::run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            error.exit_code()
        }
    }
}
