//! `--codec json`: messages converted between protobuf (what tonic encodes
//! and decodes) and proto3 JSON (what goes on the wire), with the method's
//! descriptors.

use bytes::Bytes;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, SerializeOptions};
use tonic::Status;

use super::PROTOCOL_ERROR;

/// The protobuf `proto` of a `message` as JSON.
pub(super) fn to_json(message: &MessageDescriptor, proto: &[u8]) -> Result<Bytes, Status> {
    let decoded = DynamicMessage::decode(message.clone(), proto)
        .map_err(|error| Status::internal(format!("cannot decode the request: {error}")))?;
    let mut json = Vec::new();
    decoded
        .serialize_with_options(&mut serde_json::Serializer::new(&mut json), &SerializeOptions::new())
        .map_err(|error| Status::internal(format!("cannot write the request as JSON: {error}")))?;
    Ok(Bytes::from(json))
}

/// The JSON `json` of a `message` as protobuf.
pub(super) fn from_json(message: &MessageDescriptor, json: &[u8]) -> Result<Bytes, Status> {
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    DynamicMessage::deserialize(message.clone(), &mut deserializer)
        .and_then(|decoded| deserializer.end().map(|()| decoded))
        .map(|decoded| Bytes::from(decoded.encode_to_vec()))
        .map_err(|error| {
            Status::new(
                PROTOCOL_ERROR,
                format!("the server sent invalid JSON for {}: {error}", message.full_name()),
            )
        })
}

#[cfg(test)]
mod tests {
    use connect_proto::{RequestMessage, ResponseMessage};

    use super::*;
    use crate::channel::connect::known_method;

    #[test]
    fn converts_both_ways() {
        let method = known_method("/ConnectService/UnaryRPC").unwrap();
        let request = RequestMessage { request_data: "x".into(), count: 2, interval_ms: 0 };
        assert_eq!(
            to_json(&method.input(), &request.encode_to_vec()).unwrap(),
            r#"{"requestData":"x","count":2}"#
        );
        let proto = from_json(&method.output(), br#"{"responseData":"Hello, x"}"#).unwrap();
        assert_eq!(ResponseMessage::decode(proto).unwrap().response_data, "Hello, x");
        let error = from_json(&method.output(), br#"{"responseData":1}"#).unwrap_err();
        assert_eq!(error.code(), tonic::Code::Internal);
        assert_eq!(
            error.message(),
            "the server sent invalid JSON for ResponseMessage: invalid type: integer `1`, expected a string at line 1 column 17"
        );
    }
}
