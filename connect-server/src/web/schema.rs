//! The server's schema: the descriptors of every service it serves, with
//! what every server answers beside them (health, reflection, the error
//! details of `google.rpc`), checked once when the server is built. The
//! type and its JSON conversions are connect-playground's, which the
//! playground and the client's `ui` use too.

use prost_reflect::{DescriptorPool, ServiceDescriptor};

pub(crate) use connect_playground::Schema;

use crate::Error;

/// What every server serves or answers with beside its own services: health,
/// reflection, and the error details of `google.rpc`.
const STANDARD_SETS: [&[u8]; 4] = [
    tonic_health::pb::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    tonic_types::pb::FILE_DESCRIPTOR_SET,
];

/// The services named `served`, each of which `pool` must describe, with
/// health, reflection and `google.rpc`'s error details added to `pool`.
pub(crate) fn load(mut pool: DescriptorPool, served: &[&str]) -> Result<Schema, Error> {
    for set in STANDARD_SETS {
        pool.decode_file_descriptor_set(set).map_err(Error::Descriptors)?;
    }
    let served: Vec<ServiceDescriptor> = served
        .iter()
        .map(|name| pool.get_service_by_name(name).ok_or_else(|| Error::NoDescriptors((*name).to_owned())))
        .collect::<Result<_, _>>()?;
    Ok(Schema::new(pool, served))
}

/// `ConnectService`'s schema, with health and reflection, as `ConnectServer::new` serves them.
#[cfg(test)]
pub(crate) fn connect_service() -> Schema {
    let mut pool = DescriptorPool::new();
    pool.decode_file_descriptor_set(connect_proto::FILE_DESCRIPTOR_SET).unwrap();
    load(pool, &["ConnectService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"]).unwrap()
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn knows_every_served_method() {
        let schema = connect_service();
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
        let error = load(DescriptorPool::new(), &["ConnectService"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "service ConnectService has no descriptors: add the FileDescriptorSet that defines it \
             with `file_descriptor_set`"
        );
    }

    #[test]
    fn reads_both_field_spellings_and_writes_camel_case() {
        let schema = connect_service();
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
        let schema = connect_service();
        let input = schema.method("/ConnectService/UnaryRPC").unwrap().input();
        for bad in [&b"{"[..], br#"{"requestData":5}"#, br#"[]"#, br#"{} {}"#] {
            let error = Schema::json_to_proto(&input, bad).unwrap_err();
            assert_eq!(error.code(), tonic::Code::InvalidArgument);
            assert!(error.message().starts_with("invalid JSON for RequestMessage: "), "{}", error.message());
        }
    }
}
