//! gRPC server reflection, as `list`, `describe` and `call` use it: asks
//! `grpc.reflection.v1` first and, if the server does not implement it (as
//! grpcio's `grpcio-reflection`, which serves only v1alpha), asks
//! `grpc.reflection.v1alpha` instead, as `buf curl` and grpcurl do. The two
//! versions carry the same messages on the wire, under another path.

use std::{collections::BTreeMap, time::Duration};

use http::uri::PathAndQuery;
use prost::Message;
use prost_reflect::{DescriptorPool, prost_types::FileDescriptorProto};
use tonic::{Code, Status, client::Grpc};
use tonic_prost::ProstCodec;
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, ServerReflectionResponse, server_reflection_request::MessageRequest,
    server_reflection_response::MessageResponse,
};

use crate::{
    call::{CallChannel, with_deadline},
    error::ClientError,
};

/// The method of reflection v1.
const V1: &str = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
/// The method of reflection v1alpha, the one grpcio-reflection serves.
const V1ALPHA: &str = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

/// A reflection client: one `ServerReflectionInfo` call per question, on the
/// version the server answered first.
#[derive(Debug)]
pub struct Reflection {
    grpc: Grpc<CallChannel>,
    timeout: Option<Duration>,
    /// The version that worked, once one has.
    path: Option<&'static str>,
}

impl Reflection {
    /// A client on `channel`, each call within `timeout`.
    pub fn new(channel: CallChannel, timeout: Option<Duration>) -> Self {
        Self { grpc: Grpc::new(channel), timeout, path: None }
    }

    /// The names of the services the server lists.
    pub async fn list_services(&mut self) -> Result<Vec<String>, ClientError> {
        match self.ask(MessageRequest::ListServices(String::new())).await? {
            MessageResponse::ListServicesResponse(list) => {
                Ok(list.service.into_iter().map(|service| service.name).collect())
            }
            _ => Err(ClientError::Other("reflection answered without a service list".into())),
        }
    }

    /// The descriptors of the files defining `symbols` (fully qualified
    /// names), with all their dependencies.
    pub async fn pool(&mut self, symbols: &[String]) -> Result<DescriptorPool, ClientError> {
        let mut files = BTreeMap::new();
        for symbol in symbols {
            let response = self.ask(MessageRequest::FileContainingSymbol(symbol.clone())).await?;
            add_files(&mut files, response)?;
        }
        loop {
            let missing: Vec<String> = files
                .values()
                .flat_map(|file: &FileDescriptorProto| file.dependency.iter())
                .filter(|name| !files.contains_key(*name))
                .cloned()
                .collect();
            if missing.is_empty() {
                break;
            }
            for name in missing {
                if !files.contains_key(&name) {
                    let response = self.ask(MessageRequest::FileByFilename(name)).await?;
                    add_files(&mut files, response)?;
                }
            }
        }
        let mut pool = DescriptorPool::new();
        pool.add_file_descriptor_protos(files.into_values())
            .map_err(|error| ClientError::Other(format!("the server's descriptors are invalid: {error}")))?;
        Ok(pool)
    }

    /// Asks one question, on v1 then, if the server does not implement it, on
    /// v1alpha; when neither is, says so and how to do without (as a Python
    /// `grpc.aio` server without reflection answers "Method not found!").
    async fn ask(&mut self, request: MessageRequest) -> Result<MessageResponse, ClientError> {
        if let Some(path) = self.path {
            return self.ask_at(path, request).await.map_err(ClientError::from_call);
        }
        let answer = match self.ask_at(V1, request.clone()).await {
            Err(status) if status.code() == Code::Unimplemented => {
                (V1ALPHA, self.ask_at(V1ALPHA, request).await)
            }
            answer => (V1, answer),
        };
        match answer {
            (path, Ok(response)) => {
                self.path = Some(path);
                Ok(response)
            }
            (V1ALPHA, Err(status)) if status.code() == Code::Unimplemented => Err(ClientError::NoReflection),
            (_, Err(status)) => Err(ClientError::from_call(status)),
        }
    }

    async fn ask_at(
        &mut self,
        path: &'static str,
        request: MessageRequest,
    ) -> Result<MessageResponse, Status> {
        let request = ServerReflectionRequest { host: String::new(), message_request: Some(request) };
        self.grpc
            .ready()
            .await
            .map_err(|error| Status::unavailable(format!("service was not ready: {error}")))?;
        let codec = ProstCodec::<ServerReflectionRequest, ServerReflectionResponse>::default();
        let requests = with_deadline(futures::stream::iter([request]), self.timeout);
        let mut responses =
            self.grpc.streaming(requests, PathAndQuery::from_static(path), codec).await?.into_inner();
        match responses.message().await?.and_then(|response| response.message_response) {
            Some(MessageResponse::ErrorResponse(error)) => {
                Err(Status::new(Code::from(error.error_code), error.error_message))
            }
            Some(response) => Ok(response),
            None => Err(Status::internal("reflection answered nothing")),
        }
    }
}

/// Adds the files of a `FileDescriptorResponse` to `files`, by name.
fn add_files(
    files: &mut BTreeMap<String, FileDescriptorProto>,
    response: MessageResponse,
) -> Result<(), ClientError> {
    let MessageResponse::FileDescriptorResponse(response) = response else {
        return Err(ClientError::Other("reflection answered without file descriptors".into()));
    };
    for bytes in response.file_descriptor_proto {
        let file = FileDescriptorProto::decode(bytes.as_slice()).map_err(|error| {
            ClientError::Other(format!("the server sent an invalid file descriptor: {error}"))
        })?;
        files.entry(file.name().to_owned()).or_insert(file);
    }
    Ok(())
}
