//! The `ConnectService` command-line client, as a library.
//!
//! `connect-client` (the binary) parses a [`Cli`] and hands it to [`run`];
//! tests call the same functions against an in-process server. The flags are
//! read once, in [`cli`], into settings; below that:
//!
//! - [`commands`]: what each command does (`ui` serves connect-playground's
//!   page for the server), printing through an [`Output`];
//! - [`call`]: what one call carries (metadata, token, deadline, retries);
//! - [`schema`]: where `list`, `describe` and `call` find descriptors: [`reflect`]
//!   (gRPC reflection, v1, else v1alpha) or `--proto`/`--protoset` files;
//! - [`channel`]: how the client reaches the server (TLS, balancing, waiting,
//!   HTTP/1.1) and in which protocol (gRPC, gRPC-Web, Connect);
//! - [`bench`](mod@bench): the load generator, on its own HTTP/2 caller;
//! - [`error`] and [`output`]: how the client fails and where it prints.

pub mod bench;
pub mod call;
pub mod channel;
pub mod cli;
pub mod commands;
pub mod error;
pub mod output;
pub mod reflect;
pub mod schema;

pub use cli::Cli;
pub use error::ClientError;
pub use output::Output;

/// Runs the command `cli` describes, printing to stdout and stderr.
pub async fn run(cli: Cli) -> Result<(), ClientError> {
    run_with_output(cli, &Output::stdio()).await
}

/// Runs the command `cli` describes, printing to `output`.
pub async fn run_with_output(cli: Cli, output: &Output) -> Result<(), ClientError> {
    commands::run(cli.settings()?, output).await
}
