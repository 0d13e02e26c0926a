//! The operator commands, which ask the server about itself: `health`
//! (grpc.health.v1) and `list` (gRPC reflection, v1 or v1alpha, or the
//! schema files).

use std::time::Duration;

use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    call::{CallChannel, with_deadline},
    error::ClientError,
    output::Output,
    reflect::Reflection,
    schema::Schema,
};

/// Prints the health status of `service` (`""`: the server); fails unless `SERVING`.
pub async fn health(
    channel: CallChannel,
    service: String,
    timeout: Option<Duration>,
    output: &Output,
) -> Result<(), ClientError> {
    let response = HealthClient::new(channel)
        .check(with_deadline(HealthCheckRequest { service }, timeout))
        .await
        .map_err(ClientError::from_call)?;
    let status = response.get_ref().status();
    output.line(status.as_str_name());
    match status {
        ServingStatus::Serving => Ok(()),
        other => Err(ClientError::NotServing(other.as_str_name().to_owned())),
    }
}

/// Prints the name of every service `schema` lists, one per line, sorted.
pub async fn list(mut schema: Schema, output: &Output) -> Result<(), ClientError> {
    let mut names = schema.list_services().await?;
    names.sort();
    for name in names {
        output.line(name);
    }
    Ok(())
}

/// The services the server lists through reflection (v1, else v1alpha).
pub async fn list_services(
    channel: CallChannel,
    timeout: Option<Duration>,
) -> Result<Vec<String>, ClientError> {
    Reflection::new(channel, timeout).list_services().await
}
