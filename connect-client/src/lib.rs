//! The `ConnectService` command-line client, as a library.
//!
//! `connect-client` (the binary) parses a [`cli::Cli`] and hands it to
//! [`run`]; tests call the same functions against an in-process server.

pub mod balance;
pub mod bench;
pub mod cli;
pub mod commands;
pub mod connection;
pub mod exit;
pub mod metadata;
pub mod probe;
pub mod repeat;
pub mod retry;

pub use cli::Cli;
pub use commands::run;
pub use connection::Client;
pub use exit::{ClientError, code_name};
