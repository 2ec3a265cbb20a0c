//! What every nameko-rs document holds whatever its services: the brokers as servers, and
//! nameko's wire protocol as schemas and message traits (context headers, correlation
//! ids, the error dict).

use nameko_core::config::{Config, DEFAULT_AMQP_URI, Settings, redact_uri};
use serde_json::{Map, Value, json};

use super::AsyncApiError;
use crate::connect::Broker;

/// The version of the AMQP bindings used.
pub(super) const AMQP_BINDING: &str = "0.3.0";

/// The message trait of messages sent by services: context headers, JSON in UTF-8.
pub(super) const CONTEXT_TRAIT: &str = "nameko-context";
/// The message trait of RPC requests: a correlation id.
pub(super) const REQUEST_TRAIT: &str = "nameko-rpc-request";
/// The message trait of RPC replies: the request's correlation id, no headers.
pub(super) const REPLY_TRAIT: &str = "nameko-rpc-reply";
/// The schema of nameko's error dict.
pub(super) const ERROR_SCHEMA: &str = "NamekoError";
/// The schema of nameko's context headers.
pub(super) const HEADERS_SCHEMA: &str = "NamekoContextHeaders";

/// `{"$ref": "#/components/<kind>/<name>"}`.
pub(super) fn component_ref(kind: &str, name: &str) -> Value {
    json!({ "$ref": format!("#/components/{kind}/{name}") })
}

/// The brokers of `AMQP_URI` (nameko's default when unset), one server each; the URI,
/// password hidden, in each description.
pub(super) fn servers(
    config: &Config,
    settings: &Settings,
) -> Result<Map<String, Value>, AsyncApiError> {
    let uri = config.amqp_uri()?.unwrap_or(DEFAULT_AMQP_URI).to_owned();
    let described = format!("`AMQP_URI`: `{}`", redact_uri(&uri));
    let mut servers = Map::new();
    match Broker::parse(&uri)? {
        Broker::Memory(name) => {
            servers.insert(
                "broker".to_owned(),
                json!({
                    "host": if name.is_empty() { "in-process".to_owned() } else { format!("in-process/{name}") },
                    "protocol": "amqp",
                    "title": "In-process broker",
                    "description": format!(
                        "{described}: the in-process broker of nameko-rs, with RabbitMQ's semantics (exchanges, queues, bindings, acks), inside the service binary. Set `AMQP_URI` to an `amqp://` URI to serve on RabbitMQ."
                    ),
                }),
            );
        }
        Broker::Amqp(amqp) => {
            let tls = amqp.is_tls() || settings.amqp_ssl.is_some();
            let count = amqp.brokers().len();
            for (index, broker) in amqp.brokers().iter().enumerate() {
                let key = if count == 1 {
                    "broker".to_owned()
                } else {
                    format!("broker-{}", index + 1)
                };
                let host = if broker.host().contains(':') {
                    format!("[{}]:{}", broker.host(), broker.port())
                } else {
                    format!("{}:{}", broker.host(), broker.port())
                };
                let mut server = json!({
                    "host": host,
                    "protocol": if tls { "amqps" } else { "amqp" },
                    "protocolVersion": "0-9-1",
                    "pathname": format!("/{}", amqp.vhost().trim_start_matches('/')),
                    "title": "RabbitMQ",
                    "description": format!(
                        "{described}{}; virtual host `{}`.",
                        if count > 1 { format!(" (broker {} of {count})", index + 1) } else { String::new() },
                        amqp.vhost()
                    ),
                });
                if !amqp.username().is_empty() {
                    server["x-nameko-username"] = json!(amqp.username());
                }
                servers.insert(key, server);
            }
        }
    }
    Ok(servers)
}

/// nameko's context headers, as a schema.
pub(super) fn headers_schema(settings: &Settings) -> Value {
    json!({
        "type": "object",
        "title": "nameko context headers",
        "description": "The caller's context data, one header per key named `nameko.<key>` (AMQP field-table values: strings, integers, floats, booleans, arrays, tables). Every key propagates: a service passes the context it received on to the calls and events it makes, with its own call id stack. Incoming headers without the `nameko.` prefix are context data too (kept as they are). Keys whose value is null are not sent.",
        "properties": {
            "nameko.call_id_stack": {
                "type": "array",
                "items": {"type": "string"},
                "maxItems": settings.parent_calls_tracked + 1,
                "description": format!(
                    "The ids of the calls that led here, oldest first, the sender's own last: `<service>.<method>.<uuid4>` (`standalone_rpc_proxy.call.<uuid4>` for a standalone client). Each worker appends its id and keeps the last `parent_calls_tracked + 1` ({}).",
                    settings.parent_calls_tracked + 1
                ),
            },
            "nameko.user_id": {"description": "The user the call is made for (any JSON scalar)."},
            "nameko.language": {"type": "string", "description": "The caller's language (`en-gb`)."},
            "nameko.user_agent": {"type": "string", "description": "The caller's user agent."},
            "nameko.auth_token": {"type": "string", "description": "The caller's token: never logged or shown by nameko-rs."},
        },
        "additionalProperties": true,
        "examples": [{
            "nameko.call_id_stack": ["standalone_rpc_proxy.call.e6bd7405-0d4d-4fb2-a93c-5de6c8b02a3c"],
            "nameko.language": "en-gb",
            "nameko.user_id": 42,
        }],
    })
}

/// nameko's error dict, as a schema.
pub(super) fn error_schema() -> Value {
    json!({
        "type": "object",
        "title": "nameko error",
        "description": "How a failed call is answered (nameko's `serialize(exc)`). Callers rebuild a typed error from `exc_path` when they know it (`MethodNotFound`, `IncorrectSignature`, `MalformedRequest`, and the types a service and its callers register), and a `RemoteError` with `exc_type` and `value` otherwise.",
        "required": ["exc_type", "exc_path", "exc_args", "value"],
        "properties": {
            "exc_type": {"type": "string", "description": "The error's class name.", "examples": ["ValueError"]},
            "exc_path": {
                "type": "string",
                "description": "`<module>.<ClassName>`: what typed callers rebuild the error from.",
                "examples": ["builtins.ValueError", "nameko.exceptions.MethodNotFound", "nameko.exceptions.IncorrectSignature", "nameko.exceptions.MalformedRequest"],
            },
            "exc_args": {"type": "array", "description": "The error's arguments: strings as they are, lists and dicts recursively, every other scalar as its string."},
            "value": {"type": "string", "description": "The error's text (`str(exc)`)."},
        },
        "additionalProperties": true,
        "examples": [{
            "exc_type": "MethodNotFound",
            "exc_path": "nameko.exceptions.MethodNotFound",
            "exc_args": ["does_not_exist"],
            "value": "does_not_exist",
        }],
    })
}

fn correlation_id(text: &str) -> Value {
    json!({
        "location": "$message.header#/correlation_id",
        "description": text,
    })
}

/// The message traits of nameko's messages.
pub(super) fn message_traits() -> Map<String, Value> {
    let amqp = json!({"amqp": {"contentEncoding": "utf-8", "bindingVersion": AMQP_BINDING}});
    let mut traits = Map::new();
    traits.insert(
        CONTEXT_TRAIT.to_owned(),
        json!({
            "contentType": "application/json",
            "headers": component_ref("schemas", HEADERS_SCHEMA),
            "bindings": amqp,
        }),
    );
    traits.insert(
        REQUEST_TRAIT.to_owned(),
        json!({
            "correlationId": correlation_id("The AMQP `correlation_id` property: a new uuid4 per call, copied to the reply. The `reply_to` property is the routing key of the caller's reply queue on the RPC exchange; the request is published with `mandatory` set, so that a call to a service that never ran fails at once (nameko's `UnknownService`)."),
        }),
    );
    traits.insert(
        REPLY_TRAIT.to_owned(),
        json!({
            "contentType": "application/json",
            "correlationId": correlation_id("The AMQP `correlation_id` property of the request this answers."),
            "headers": {"type": "object", "maxProperties": 0, "description": "Replies carry no context headers."},
            "bindings": amqp,
        }),
    );
    traits
}
