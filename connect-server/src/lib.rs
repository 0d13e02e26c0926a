//! The `ConnectService` gRPC server.
//!
//! The binary (`cargo run -p connect-server`) is a thin wrapper: it parses
//! [`Config`], sets up logging and calls [`ConnectServer::serve`] with a
//! bound listener and a shutdown future. Tests do the same on `127.0.0.1:0`.

pub mod auth;
pub mod busy_poll;
pub mod coarse_timer;
pub mod config;
pub mod content_type;
pub mod deadline;
pub mod generated;
pub mod health;
pub mod incoming;
pub mod limits;
pub mod logging;
pub mod max_age;
pub mod observe;
pub mod producer;
pub mod routes;
pub mod serve;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod stats;
pub mod tls;
pub mod wake_at;
pub mod workers;

pub use config::Config;
pub use server::ConnectServer;
pub use service::Connect;
pub use stats::{Stats, StatsSnapshot};
