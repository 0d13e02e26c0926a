//! Every message the server knows, from the descriptor sets it already
//! serves for reflection, so JSON works for every service without code per
//! message: canonical proto3 JSON (`requestData`, with `request_data`
//! accepted) by `prost-reflect`.

use prost::Message;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, MethodDescriptor,
    SerializeOptions, ServiceDescriptor,
};
use std::{collections::HashMap, sync::Arc};

use tonic::Status;

use crate::Error;

/// What every server serves or answers with beside its own services: health,
/// reflection, and the error details of `google.rpc`.
const STANDARD_SETS: [&[u8]; 4] = [
    tonic_health::pb::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    tonic_types::pb::FILE_DESCRIPTOR_SET,
];

/// The descriptors of every service served, and of the error details.
#[derive(Debug, Clone)]
pub(crate) struct Schema {
    pool: DescriptorPool,
    /// The services served, in the order they were added.
    served: Vec<ServiceDescriptor>,
    /// Their methods by path (`/package.Service/Method`): one lookup per call.
    methods: Arc<HashMap<Box<str>, MethodDescriptor, foldhash::fast::RandomState>>,
}

impl Schema {
    /// The services named `served`, each of which `pool` must describe, with
    /// health, reflection and `google.rpc`'s error details added to `pool`.
    pub(crate) fn new(mut pool: DescriptorPool, served: &[&str]) -> Result<Self, Error> {
        for set in STANDARD_SETS {
            pool.decode_file_descriptor_set(set).map_err(Error::Descriptors)?;
        }
        let served: Vec<ServiceDescriptor> = served
            .iter()
            .map(|name| {
                pool.get_service_by_name(name).ok_or_else(|| Error::NoDescriptors((*name).to_owned()))
            })
            .collect::<Result<_, _>>()?;
        let methods = served
            .iter()
            .flat_map(ServiceDescriptor::methods)
            .map(|method| {
                (format!("/{}/{}", method.parent_service().full_name(), method.name()).into(), method)
            })
            .collect();
        Ok(Self { pool, served, methods: Arc::new(methods) })
    }

    /// The services served, for the playground's description and the metrics.
    pub(crate) fn services(&self) -> &[ServiceDescriptor] {
        &self.served
    }

    /// The method a path (`/package.Service/Method`) names, if the server serves it.
    pub(crate) fn method(&self, path: &str) -> Option<MethodDescriptor> {
        self.methods.get(path).cloned()
    }

    /// Every method served, with its path.
    pub(crate) fn methods(&self) -> impl Iterator<Item = (&str, &MethodDescriptor)> {
        self.methods.iter().map(|(path, method)| (&**path, method))
    }

    /// A JSON message of type `message`, encoded as protobuf.
    pub(crate) fn json_to_proto(message: &MessageDescriptor, json: &[u8]) -> Result<Vec<u8>, Status> {
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
    pub(crate) fn proto_to_json(message: &MessageDescriptor, proto: &[u8]) -> Result<Vec<u8>, Status> {
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
    pub(crate) fn status_details(&self, encoded: &[u8]) -> Option<Vec<Detail>> {
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
pub(crate) struct Detail {
    /// As sent (`type.googleapis.com/google.rpc.BadRequest`).
    pub(crate) type_url: String,
    /// The message's full name (`google.rpc.BadRequest`).
    pub(crate) type_name: String,
    /// Its bytes.
    pub(crate) value: Vec<u8>,
    /// As JSON, when the server knows the type.
    pub(crate) json: Option<serde_json::Value>,
}

#[cfg(test)]
impl Schema {
    /// `ConnectService`'s schema, with health and reflection, as `ConnectServer::new` serves them.
    pub(crate) fn connect_service() -> Self {
        let mut pool = DescriptorPool::new();
        pool.decode_file_descriptor_set(connect_proto::FILE_DESCRIPTOR_SET).unwrap();
        Self::new(pool, &["ConnectService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"])
            .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_every_served_method() {
        let schema = Schema::connect_service();
        for path in [
            "/ConnectService/UnaryRPC",
            "/ConnectService/BidiStreamRPC",
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        ] {
            assert!(schema.method(path).is_some(), "{path}");
        }
        assert!(schema.method("/ConnectService/Nope").is_none());
        assert!(schema.method("/Nope/UnaryRPC").is_none());
        assert!(schema.method("ConnectService").is_none());
        // Described but not served.
        assert!(schema.method("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo").is_none());
    }

    #[test]
    fn a_served_service_needs_its_descriptors() {
        let error = Schema::new(DescriptorPool::new(), &["ConnectService"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "service ConnectService has no descriptors: add the FileDescriptorSet that defines it \
             with `file_descriptor_set`"
        );
    }

    #[test]
    fn reads_both_field_spellings_and_writes_camel_case() {
        let schema = Schema::connect_service();
        let input = schema.method("/ConnectService/UnaryRPC").unwrap().input();
        let camel = Schema::json_to_proto(&input, br#"{"requestData":"x"}"#).unwrap();
        let snake = Schema::json_to_proto(&input, br#"{"request_data":"x"}"#).unwrap();
        assert_eq!(camel, snake);
        let newer = Schema::json_to_proto(&input, br#"{"requestData":"x","fieldOfTomorrow":1}"#).unwrap();
        assert_eq!(camel, newer, "unknown fields are skipped");
        let request = connect_proto::RequestMessage::decode(camel.as_slice()).unwrap();
        assert_eq!(request.request_data, "x");
        let json = Schema::proto_to_json(&input, &camel).unwrap();
        assert_eq!(std::str::from_utf8(&json).unwrap(), r#"{"requestData":"x"}"#);
    }

    #[test]
    fn bad_json_is_invalid_argument() {
        let schema = Schema::connect_service();
        let input = schema.method("/ConnectService/UnaryRPC").unwrap().input();
        for bad in [&b"{"[..], br#"{"requestData":5}"#, br#"[]"#, br#"{} {}"#] {
            let error = Schema::json_to_proto(&input, bad).unwrap_err();
            assert_eq!(error.code(), tonic::Code::InvalidArgument);
            assert!(error.message().starts_with("invalid JSON for RequestMessage: "), "{}", error.message());
        }
    }
}
