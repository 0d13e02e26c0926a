//! The descriptors of the services a playground calls, and the JSON that
//! goes with them: canonical proto3 JSON (`requestData`, with
//! `request_data` accepted) by `prost-reflect`, for every message without
//! code per message. The server's Connect and gRPC-Web edge uses the same
//! conversions, so the server and the client's `ui` share one schema type.

use prost::Message;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, MethodDescriptor,
    SerializeOptions, ServiceDescriptor,
};
use std::{collections::HashMap, sync::Arc};

use tonic::Status;

/// The descriptors of every service served, and of the error details.
#[derive(Debug, Clone)]
pub struct Schema {
    pool: DescriptorPool,
    /// The services served, in the order they were added.
    served: Vec<ServiceDescriptor>,
    /// Their methods by path (`/package.Service/Method`): one lookup per call.
    methods: Arc<HashMap<Box<str>, MethodDescriptor, foldhash::fast::RandomState>>,
}

impl Schema {
    /// A schema of `served`, services of `pool` (whose error details the
    /// playground shows as JSON when `pool` also has `google.rpc`'s types).
    pub fn new(pool: DescriptorPool, served: Vec<ServiceDescriptor>) -> Self {
        let methods = served
            .iter()
            .flat_map(ServiceDescriptor::methods)
            .map(|method| {
                (format!("/{}/{}", method.parent_service().full_name(), method.name()).into(), method)
            })
            .collect();
        Self { pool, served, methods: Arc::new(methods) }
    }

    /// The services served, in the order given.
    pub fn services(&self) -> &[ServiceDescriptor] {
        &self.served
    }

    /// The method a path (`/package.Service/Method`) names, if the server serves it.
    pub fn method(&self, path: &str) -> Option<MethodDescriptor> {
        self.methods.get(path).cloned()
    }

    /// Every method served, with its path.
    pub fn methods(&self) -> impl Iterator<Item = (&str, &MethodDescriptor)> {
        self.methods.iter().map(|(path, method)| (&**path, method))
    }

    /// A JSON message of type `message`, encoded as protobuf.
    pub fn json_to_proto(message: &MessageDescriptor, json: &[u8]) -> Result<Vec<u8>, Status> {
        let mut deserializer = serde_json::Deserializer::from_slice(json);
        // Unknown fields are skipped, as the binary encoding skips them: a newer
        // client's new field does not break an older server (connect-es does the same).
        let options = DeserializeOptions::new().deny_unknown_fields(false);
        let decoded = DynamicMessage::deserialize_with_options(message.clone(), &mut deserializer, &options)
            .and_then(|decoded| deserializer.end().map(|()| decoded))
            .map_err(|error| {
                Status::invalid_argument(format!("invalid JSON for {}: {error}", message.full_name()))
            })?;
        Ok(decoded.encode_to_vec())
    }

    /// A protobuf message of type `message` as canonical JSON.
    pub fn proto_to_json(message: &MessageDescriptor, proto: &[u8]) -> Result<Vec<u8>, Status> {
        let decoded = DynamicMessage::decode(message.clone(), proto).map_err(|error| {
            Status::internal(format!("invalid {} from the service: {error}", message.full_name()))
        })?;
        let mut out = Vec::with_capacity(proto.len() + 32);
        let mut serializer = serde_json::Serializer::new(&mut out);
        decoded.serialize_with_options(&mut serializer, &SerializeOptions::new()).map_err(|error| {
            Status::internal(format!("cannot write {} as JSON: {error}", message.full_name()))
        })?;
        Ok(out)
    }

    /// The details of a `google.rpc.Status` (`grpc-status-details-bin`):
    /// each one's type, bytes, and JSON when the type is known (`BadRequest`,
    /// ...). `None` when `encoded` is not a `google.rpc.Status`.
    pub fn status_details(&self, encoded: &[u8]) -> Option<Vec<Detail>> {
        let status = tonic_types::pb::Status::decode(encoded).ok()?;
        let details = status.details.into_iter().map(|any| {
            let type_name = any.type_url.rsplit('/').next().unwrap_or_default().to_owned();
            let json = self.detail_as_json(&type_name, &any.value);
            Detail { type_url: any.type_url, type_name, value: any.value, json }
        });
        Some(details.collect())
    }

    fn detail_as_json(&self, type_name: &str, value: &[u8]) -> Option<serde_json::Value> {
        let descriptor = self.pool.get_message_by_name(type_name)?;
        let decoded = DynamicMessage::decode(descriptor, value).ok()?;
        decoded.serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new()).ok()
    }
}

/// One detail of a `google.rpc.Status`.
#[derive(Debug)]
pub struct Detail {
    /// As sent (`type.googleapis.com/google.rpc.BadRequest`).
    pub type_url: String,
    /// The message's full name (`google.rpc.BadRequest`).
    pub type_name: String,
    /// Its bytes.
    pub value: Vec<u8>,
    /// As JSON, when the server knows the type.
    pub json: Option<serde_json::Value>,
}

/// `ConnectService`'s schema with reflection, as the server serves them.
#[cfg(test)]
pub(crate) fn connect_service() -> Schema {
    let mut pool = DescriptorPool::new();
    pool.decode_file_descriptor_set(connect_proto::FILE_DESCRIPTOR_SET).unwrap();
    pool.decode_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET).unwrap();
    let served = ["ConnectService", "grpc.reflection.v1.ServerReflection"]
        .map(|name| pool.get_service_by_name(name).unwrap());
    Schema::new(pool, served.into())
}
