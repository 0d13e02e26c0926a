//! The operator commands, which ask the server about itself: `health` (grpc.health.v1) and `list` (gRPC reflection).

use std::time::Duration;

use tonic::{Code, Status};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

use crate::{
    call::{CallChannel, with_deadline},
    error::ClientError,
    output::Output,
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

/// Prints the name of every service the server offers, one per line, sorted.
pub async fn list(
    channel: CallChannel,
    timeout: Option<Duration>,
    output: &Output,
) -> Result<(), ClientError> {
    let mut names = list_services(channel, timeout).await?;
    names.sort();
    for name in names {
        output.line(name);
    }
    Ok(())
}

/// The services listed by reflection v1 (the only version this client speaks).
pub async fn list_services(
    channel: CallChannel,
    timeout: Option<Duration>,
) -> Result<Vec<String>, ClientError> {
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let requests = futures::stream::iter([request]);
    let mut responses = ServerReflectionClient::new(channel)
        .server_reflection_info(with_deadline(requests, timeout))
        .await
        .map_err(ClientError::from_call)?
        .into_inner();
    let response = responses.message().await.map_err(ClientError::from_call)?;
    match response.and_then(|response| response.message_response) {
        Some(MessageResponse::ListServicesResponse(list)) => {
            Ok(list.service.into_iter().map(|service| service.name).collect())
        }
        Some(MessageResponse::ErrorResponse(error)) => {
            Err(ClientError::from_call(Status::new(Code::from(error.error_code), error.error_message)))
        }
        _ => Err(ClientError::Other("reflection answered without a service list".into())),
    }
}
