//! The `ConnectService` gRPC server.
//!
//! The binary (`cargo run -p connect-server`) is a thin wrapper: it parses
//! [`Config`], sets up logging and calls [`ConnectServer::serve`] with a
//! bound listener and a shutdown future. Tests do the same on `127.0.0.1:0`.

pub mod auth;
mod busy_poll;
mod coarse_timer;
pub mod config;
pub mod content_type;
pub mod deadline;
mod generated;
pub mod health;
pub mod incoming;
pub mod limits;
pub mod logging;
mod max_age;
pub mod observe;
pub mod producer;
mod routes;
mod serve;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod stats;
pub mod tls;
mod wake_at;
pub mod workers;

pub use config::Config;
pub use server::ConnectServer;
pub use service::Connect;
pub use stats::{Stats, StatsSnapshot};
