//! `describe`: the server's services, or one service, method, message or
//! enum, as reflection or the schema files give them, in a `.proto`-like form.

use prost_reflect::{
    DescriptorPool, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
    ServiceDescriptor,
};

use crate::{
    error::ClientError,
    output::Output,
    schema::{Schema, find_method},
};

/// Prints every service the schema lists (no `symbol`), or the service,
/// method, message or enum named `symbol` (fully qualified).
pub async fn describe(
    mut schema: Schema,
    symbol: Option<String>,
    output: &Output,
) -> Result<(), ClientError> {
    let Some(symbol) = symbol else {
        let mut services = schema.list_services().await?;
        services.sort();
        let pool = schema.pool(&services).await?;
        for (i, name) in services.iter().enumerate() {
            if i > 0 {
                output.line("");
            }
            print_service(&service(&pool, name)?, output);
        }
        return Ok(());
    };
    // Not every server knows `Service.Method` (nor `Service/Method`) as a symbol: then ask for the service.
    let pool = match schema.pool(std::slice::from_ref(&symbol)).await {
        Ok(pool) => pool,
        Err(error) => {
            let Some((service, _)) = symbol.rsplit_once(['/', '.']) else { return Err(error) };
            schema.pool(&[service.to_owned()]).await.map_err(|_| error)?
        }
    };
    if let Some(service) = pool.get_service_by_name(&symbol) {
        print_service(&service, output);
    } else if let Some(message) = pool.get_message_by_name(&symbol) {
        print_message(&message, output);
    } else if let Some(enumeration) = pool.get_enum_by_name(&symbol) {
        print_enum(&enumeration, output);
    } else if let Some(method) = find_method(&pool, &symbol) {
        output.line(rpc(&method));
    } else {
        return Err(schema.missing(&symbol));
    }
    Ok(())
}

/// The service `name` in `pool`.
pub(crate) fn service(pool: &DescriptorPool, name: &str) -> Result<ServiceDescriptor, ClientError> {
    pool.get_service_by_name(name)
        .ok_or_else(|| ClientError::Other(format!("the server does not describe service {name:?}")))
}

fn print_service(service: &ServiceDescriptor, output: &Output) {
    output.line(format_args!("service {}", service.full_name()));
    for method in service.methods() {
        output.line(format_args!("  {}", rpc(&method)));
    }
}

/// `rpc Name(stream Input) returns (stream Output)`.
fn rpc(method: &MethodDescriptor) -> String {
    let stream = |streaming: bool| if streaming { "stream " } else { "" };
    format!(
        "rpc {}({}{}) returns ({}{})",
        method.name(),
        stream(method.is_client_streaming()),
        method.input().full_name(),
        stream(method.is_server_streaming()),
        method.output().full_name()
    )
}

fn print_message(message: &MessageDescriptor, output: &Output) {
    output.line(format_args!("message {}", message.full_name()));
    for field in message.fields() {
        output.line(format_args!("  {} {} = {}", field_type(&field), field.name(), field.number()));
    }
}

fn print_enum(enumeration: &EnumDescriptor, output: &Output) {
    output.line(format_args!("enum {}", enumeration.full_name()));
    for value in enumeration.values() {
        output.line(format_args!("  {} = {}", value.name(), value.number()));
    }
}

/// A field's type as `.proto` writes it: `string`, `repeated Foo`, `map<string, Bar>`.
fn field_type(field: &FieldDescriptor) -> String {
    if field.is_map()
        && let Kind::Message(entry) = field.kind()
    {
        let key = entry.map_entry_key_field();
        let value = entry.map_entry_value_field();
        return format!("map<{}, {}>", kind_name(&key.kind()), kind_name(&value.kind()));
    }
    let name = kind_name(&field.kind());
    if field.is_list() { format!("repeated {name}") } else { name }
}

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Double => "double".into(),
        Kind::Float => "float".into(),
        Kind::Int32 => "int32".into(),
        Kind::Int64 => "int64".into(),
        Kind::Uint32 => "uint32".into(),
        Kind::Uint64 => "uint64".into(),
        Kind::Sint32 => "sint32".into(),
        Kind::Sint64 => "sint64".into(),
        Kind::Fixed32 => "fixed32".into(),
        Kind::Fixed64 => "fixed64".into(),
        Kind::Sfixed32 => "sfixed32".into(),
        Kind::Sfixed64 => "sfixed64".into(),
        Kind::Bool => "bool".into(),
        Kind::String => "string".into(),
        Kind::Bytes => "bytes".into(),
        Kind::Message(message) => message.full_name().into(),
        Kind::Enum(enumeration) => enumeration.full_name().into(),
    }
}
