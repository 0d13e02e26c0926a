//! `greeter`: the example service on connect-server's runtime, with the
//! server's flags (`cargo run -p greeter -- --help`):
//!
//! ```console
//! $ cargo run -p greeter -- --addr 127.0.0.1:50052 --metrics-addr 127.0.0.1:9465
//! Server listening on 127.0.0.1:50052
//! ```

use clap::Parser;
use connect_server::{Config, ConnectServer};
use greeter::{FILE_DESCRIPTOR_SET, Greeter, GreeterServer};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let _log = connect_server::logging::init(config.log_format);
    let server = ConnectServer::builder(config)
        .add_service(GreeterServer::new(Greeter))
        .file_descriptor_set(FILE_DESCRIPTOR_SET)?
        .build()?;
    server.run().await?;
    Ok(())
}
