//! Connect's errors: the code names and HTTP statuses of the protocol's
//! table, and the JSON error (`{"code":...,"message":...,"details":[...]}`)
//! made from a gRPC status, its `google.rpc` details included.

use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD};
use bytes::Bytes;
use connect_proto::codes;
use http::{HeaderValue, Response, header::CONTENT_TYPE};
use serde_json::{Map, Value, json};
use tonic::Status;

use crate::web::schema::Schema;

/// `status` as Connect's JSON error object.
pub(crate) fn error_json(status: &Status, schema: &Schema) -> Value {
    let mut error = Map::new();
    error.insert("code".into(), codes::connect_name(status.code()).into());
    if !status.message().is_empty() {
        error.insert("message".into(), status.message().into());
    }
    let details = details(status, schema);
    if !details.is_empty() {
        error.insert("details".into(), Value::Array(details));
    }
    Value::Object(error)
}

/// The details of `status`, each with its type, its bytes in base64, and as
/// JSON in `debug` when known.
fn details(status: &Status, schema: &Schema) -> Vec<Value> {
    let details = schema.status_details(status.details()).unwrap_or_default();
    details
        .into_iter()
        .map(|detail| {
            let mut json =
                json!({ "type": detail.type_name, "value": STANDARD_NO_PAD.encode(&detail.value) });
            if let Some(debug) = detail.json {
                json["debug"] = debug;
            }
            json
        })
        .collect()
}

/// A unary call's error response: the table's HTTP status and the JSON body.
pub(crate) fn unary_error_response(status: &Status, schema: &Schema) -> Response<Bytes> {
    let body = serde_json::to_vec(&error_json(status, schema)).expect("a JSON value serializes");
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = codes::connect_http_status(status.code());
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use tonic_types::{ErrorDetails, StatusExt};

    use tonic::Code;

    use super::*;

    #[test]
    fn carries_bad_request_details() {
        let schema = crate::web::schema::connect_service();
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "count must be at most 5",
            ErrorDetails::with_bad_request_violation("count", "must be at most 5"),
        );
        let json = error_json(&status, &schema);
        assert_eq!(json["code"], "invalid_argument");
        assert_eq!(json["message"], "count must be at most 5");
        assert_eq!(json["details"][0]["type"], "google.rpc.BadRequest");
        assert_eq!(
            json["details"][0]["debug"],
            json!({"fieldViolations": [{"field": "count", "description": "must be at most 5"}]})
        );
        let value = STANDARD_NO_PAD.decode(json["details"][0]["value"].as_str().unwrap()).unwrap();
        let decoded = tonic_types::pb::BadRequest::decode(value.as_slice()).unwrap();
        assert_eq!(decoded.field_violations[0].field, "count");
    }
}
