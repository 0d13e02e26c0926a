//! The `ConnectService` gRPC server.
//!
//! The binary (`cargo run -p connect-server`) is a thin wrapper: it parses
//! [`Config`], sets up logging, binds the listeners and calls
//! [`ConnectServer::serve`] with them and a shutdown future. Tests do the
//! same on `127.0.0.1:0`, or on an in-memory [`MemoryListener`].
//!
//! The rooms, in the order a call goes through them: [`config`] (flags, turned
//! into settings once), `server` (workers, shutdown), `transport` (accepting,
//! connection limits, TLS, HTTP/2), `grpc` (the protocol's rules), `web` (gRPC-Web and Connect, translated into gRPC), `service`
//! (routes and handlers) and [`telemetry`] (per-call headers, metrics, access
//! log, counters, logging); beside them `playground`, the browser page on
//! the metrics endpoint that calls the server through the same stack.

pub mod config;
pub mod grpc;
mod playground;
mod server;
pub mod service;
pub mod telemetry;
mod transport;
mod web;

pub use config::Config;
pub use server::{ConnectServer, bind, default_count, signal};
pub use telemetry::{Stats, StatsSnapshot, logging};
pub use transport::{Accept, Connections, Listener, MemoryConnector, MemoryListener, TcpIo};
pub use web::Protocol;
