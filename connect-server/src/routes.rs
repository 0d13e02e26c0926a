//! The services one listener serves: `ConnectService` (with compression,
//! message limits and auth), health, and reflection v1 and v1alpha.

use connect_proto::{ConnectServiceServer, FILE_DESCRIPTOR_SET};
use tonic::{codec::CompressionEncoding, service::Routes, service::interceptor::InterceptedService};

use crate::{auth::BearerAuth, config::Config, health::Health, service::Connect};

/// `ConnectService` behind the auth check, accepting and answering gzip and zstd.
pub fn connect_service(
    config: &Config,
    service: Connect,
    auth: BearerAuth,
) -> InterceptedService<ConnectServiceServer<Connect>, BearerAuth> {
    let server = ConnectServiceServer::new(service)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        // Responses are compressed only for clients that ask (`grpc-accept-encoding`).
        .send_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Zstd)
        .max_decoding_message_size(config.limits.max_recv_message_size)
        .max_encoding_message_size(config.limits.max_send_message_size);
    InterceptedService::new(server, auth)
}

/// Every service of one listener, ready for `Server::add_routes`.
pub fn routes(config: &Config, service: Connect, health: &Health) -> anyhow::Result<Routes> {
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            // So reflection tools can call the health service too.
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    Ok(Routes::new(connect_service(config, service, config.auth.interceptor()?))
        .add_service(health.service())
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?))
}
