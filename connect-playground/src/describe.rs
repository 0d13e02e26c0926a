//! The services and message types as the page needs them to list methods
//! and build forms, from the server's own descriptors (`/schema.json`).

use std::{collections::BTreeMap, sync::Arc};

use axum::{extract::State, http::header::CONTENT_TYPE, response::IntoResponse};
use prost_reflect::{Cardinality, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Value, json};

use super::Playground;
use crate::Schema;

/// `GET /schema.json`.
pub(super) async fn serve(State(playground): State<Arc<Playground>>) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], playground.description.clone())
}

/// Every service with its methods, and every message type their requests use.
pub(super) fn services(schema: &Schema) -> Value {
    let mut messages = BTreeMap::new();
    let mut services = Vec::new();
    for service in schema.services() {
        let methods: Vec<Value> = service
            .methods()
            .map(|method| {
                add_message(&method.input(), &mut messages);
                json!({
                    "name": method.name(),
                    "path": format!("/{}/{}", service.full_name(), method.name()),
                    "clientStreaming": method.is_client_streaming(),
                    "serverStreaming": method.is_server_streaming(),
                    "input": method.input().full_name(),
                    "output": method.output().full_name(),
                })
            })
            .collect();
        services.push(json!({ "name": service.full_name(), "methods": methods }));
    }
    json!({ "services": services, "messages": messages })
}

/// `message` and every message type its fields use, by full name.
fn add_message(message: &MessageDescriptor, messages: &mut BTreeMap<String, Value>) {
    if messages.contains_key(message.full_name()) {
        return;
    }
    // Inserted before its fields, so a recursive type ends the walk.
    messages.insert(message.full_name().to_owned(), Value::Null);
    let fields: Vec<Value> = message.fields().map(|field| describe_field(&field, messages)).collect();
    messages.insert(message.full_name().to_owned(), json!({ "fields": fields }));
}

/// One field: its JSON name, its type, and for enums their values.
fn describe_field(field: &FieldDescriptor, messages: &mut BTreeMap<String, Value>) -> Value {
    let (kind, message, values) = match field.kind() {
        Kind::Message(message) => {
            add_message(&message, messages);
            ("message", Some(message.full_name().to_owned()), None)
        }
        Kind::Enum(values) => {
            let names: Vec<String> = values.values().map(|value| value.name().to_owned()).collect();
            ("enum", None, Some(json!(names)))
        }
        Kind::String => ("string", None, None),
        Kind::Bytes => ("bytes", None, None),
        Kind::Bool => ("bool", None, None),
        Kind::Double | Kind::Float => ("float", None, None),
        Kind::Int64 | Kind::Uint64 | Kind::Sint64 | Kind::Fixed64 | Kind::Sfixed64 => ("int64", None, None),
        _ => ("int", None, None),
    };
    json!({
        "name": field.name(),
        "jsonName": field.json_name(),
        "kind": kind,
        "message": message,
        "enum": values,
        "repeated": field.cardinality() == Cardinality::Repeated,
        "map": field.is_map(),
        "oneof": field.containing_oneof().map(|oneof| oneof.name().to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_methods_and_their_request_types() {
        let description = services(&crate::schema::connect_service());
        let connect = description["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|service| service["name"] == "ConnectService")
            .unwrap();
        let bidi =
            connect["methods"].as_array().unwrap().iter().find(|m| m["name"] == "BidiStreamRPC").unwrap();
        assert_eq!(bidi["path"], "/ConnectService/BidiStreamRPC");
        assert_eq!(bidi["clientStreaming"], true);
        assert_eq!(bidi["serverStreaming"], true);
        let fields = &description["messages"]["RequestMessage"]["fields"];
        assert_eq!(fields[0]["jsonName"], "requestData");
        assert_eq!(fields[0]["kind"], "string");
        assert_eq!(fields[1]["jsonName"], "count");
        assert_eq!(fields[1]["kind"], "int");
        let reflection = &description["messages"]["grpc.reflection.v1.ServerReflectionRequest"]["fields"];
        assert_eq!(reflection[1]["oneof"], "message_request");
    }
}
