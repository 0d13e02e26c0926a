//! A gRPC server runtime for tonic services: every service added to its
//! [`Builder`] is served over gRPC, gRPC-Web and the Connect protocol (JSON
//! and binary) on one port, with reflection, health, the bearer-token check,
//! limits, deadlines, Prometheus metrics, the access log and the browser
//! playground, and no code of its own for any of them.
//!
//! ```no_run
//! use clap::Parser as _;
//! use connect_server::{Config, ConnectServer};
//!
//! # async fn run() -> Result<(), connect_server::Error> {
//! let config = Config::parse(); // the flags of `connect-server --help`
//! let listeners = connect_server::bind(config.addr, connect_server::default_count(), config.share_port)?;
//! let server = ConnectServer::builder(config)
//!     // Any tonic-generated server, and the descriptors of its proto.
//!     .add_service(connect_proto::ConnectServiceServer::new(MyService))
//!     .file_descriptor_set(connect_proto::FILE_DESCRIPTOR_SET)?
//!     .build()?;
//! server.serve(listeners, connect_server::signal()).await
//! # }
//! # struct MyService;
//! # #[tonic::async_trait]
//! # impl connect_proto::ConnectService for MyService {
//! #     async fn unary_rpc(&self, _: tonic::Request<connect_proto::RequestMessage>) -> Result<tonic::Response<connect_proto::ResponseMessage>, tonic::Status> { todo!() }
//! #     type ServerStreamRPCStream = futures::stream::Empty<Result<connect_proto::ResponseMessage, tonic::Status>>;
//! #     async fn server_stream_rpc(&self, _: tonic::Request<connect_proto::RequestMessage>) -> Result<tonic::Response<Self::ServerStreamRPCStream>, tonic::Status> { todo!() }
//! #     async fn client_stream_rpc(&self, _: tonic::Request<tonic::Streaming<connect_proto::RequestMessage>>) -> Result<tonic::Response<connect_proto::ResponseMessage>, tonic::Status> { todo!() }
//! #     type BidiStreamRPCStream = futures::stream::Empty<Result<connect_proto::ResponseMessage, tonic::Status>>;
//! #     async fn bidi_stream_rpc(&self, _: tonic::Request<tonic::Streaming<connect_proto::RequestMessage>>) -> Result<tonic::Response<Self::BidiStreamRPCStream>, tonic::Status> { todo!() }
//! # }
//! ```
//!
//! [`ConnectServer::new`] is the `ConnectService` server the binary
//! (`cargo run -p connect-server`) runs: the builder with `ConnectService`
//! added. [`ConnectServer::serve`] is the one way to serve, on TCP
//! listeners from [`bind`] (one worker thread each) or on an in-memory
//! [`MemoryListener`], until a shutdown future fires.
//!
//! The rooms, in the order a call goes through them: [`config`] (flags, turned
//! into settings once), `server` (the builder, workers, shutdown),
//! `transport` (accepting, connection limits, TLS, HTTP/2), `web` (gRPC-Web
//! and Connect, translated into gRPC), `telemetry` (per-call headers,
//! metrics, access log, counters, logging), `service` (routes, health and
//! the `ConnectService` handlers) and `grpc` (the protocol's rules); beside
//! them the browser playground on the metrics endpoint (the
//! `connect-playground` crate), which calls the server through the same stack.
#![deny(rustdoc::broken_intra_doc_links)]

pub mod config;
mod error;
mod grpc;
mod server;
// What benches, fuzz targets and tests reach inside: not the API.
#[doc(hidden)]
pub mod service;
#[doc(hidden)]
pub mod telemetry;
mod transport;
mod web;

pub use config::Config;
pub use error::Error;
pub use server::{Builder, ConnectServer, GrpcService, ServiceOptions, bind, default_count, signal};
pub use telemetry::{Stats, StatsSnapshot, logging};
pub use transport::{Accept, Connections, Listener, MemoryConnector, MemoryListener, TcpIo};
pub use web::Protocol;
