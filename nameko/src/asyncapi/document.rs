//! Building the document from what services and their entrypoints describe.

use nameko_core::config::{Config, Settings};
use nameko_core::extension::{Action, Channel, Description, Operation, Payload};
use nameko_core::messaging::ExchangeDef;
use nameko_core::method::Method;
use nameko_core::schemars::generate::SchemaSettings;
use nameko_core::schemars::{Schema, SchemaGenerator};
use nameko_core::service::schema::{MethodSchemas, ServiceDescription};
use nameko_core::transport::ExchangeKind;
use nameko_core::wire;
use serde_json::{Map, Value, json};

use super::wire::{
    AMQP_BINDING, CONTEXT_TRAIT, ERROR_SCHEMA, HEADERS_SCHEMA, REPLY_TRAIT, REQUEST_TRAIT,
    component_ref, error_schema, headers_schema, message_traits, servers,
};
use super::{ASYNCAPI_VERSION, AsyncApiError};

/// Describes one service under some settings, its schemas made by the generator.
pub(crate) type Describe = fn(&Settings, &mut SchemaGenerator) -> ServiceDescription;

/// The generator of the documents' schemas: JSON Schema draft 7 (what AsyncAPI schemas
/// extend), named types in `components/schemas`.
pub(super) fn schema_generator() -> SchemaGenerator {
    SchemaSettings::draft07()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator()
}

/// The whole document.
pub(super) fn build(
    config: &Config,
    services: &[(&'static str, Describe)],
    title: &str,
    version: &str,
) -> Result<Map<String, Value>, AsyncApiError> {
    let settings = config.settings()?;
    let servers = servers(config, &settings)?;
    let mut generator = schema_generator();
    let mut doc = Document::default();
    for (_, describe) in services {
        let service = describe(&settings, &mut generator);
        doc.service(&service, &settings);
    }
    let mut schemas = generator.take_definitions(true);
    schemas.insert(ERROR_SCHEMA.to_owned(), error_schema());
    schemas.insert(HEADERS_SCHEMA.to_owned(), headers_schema(&settings));

    let mut out = Map::new();
    out.insert("asyncapi".to_owned(), json!(ASYNCAPI_VERSION));
    out.insert(
        "info".to_owned(),
        json!({
            "title": title,
            "version": version,
            "description": doc.overview(&settings),
            "tags": doc.tags,
        }),
    );
    out.insert("defaultContentType".to_owned(), json!("application/json"));
    out.insert("servers".to_owned(), Value::Object(servers));
    out.insert("channels".to_owned(), Value::Object(doc.channels));
    out.insert("operations".to_owned(), Value::Object(doc.operations));
    out.insert(
        "components".to_owned(),
        json!({
            "schemas": schemas,
            "messages": doc.messages,
            "messageTraits": message_traits(),
        }),
    );
    out.insert(
        "x-nameko-entrypoints".to_owned(),
        Value::Array(doc.entrypoints),
    );
    Ok(out)
}

/// The parts of the document, filled service by service.
#[derive(Default)]
struct Document {
    channels: Map<String, Value>,
    operations: Map<String, Value>,
    messages: Map<String, Value>,
    entrypoints: Vec<Value>,
    tags: Vec<Value>,
    /// One line per service, for the overview.
    lines: Vec<String>,
}

/// A name usable as a key of the document and in a JSON pointer: what is not a letter, a
/// digit, `.`, `-` or `_` becomes `_`.
fn key(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn exchange_binding(exchange: &ExchangeDef) -> Value {
    json!({
        "name": exchange.name,
        "type": exchange_kind(exchange.kind),
        "durable": exchange.durable,
        "autoDelete": exchange.auto_delete,
    })
}

fn exchange_kind(kind: ExchangeKind) -> &'static str {
    match kind {
        ExchangeKind::Direct => "direct",
        ExchangeKind::Fanout => "fanout",
        ExchangeKind::Headers => "headers",
        _ => "topic",
    }
}

/// The first line of a text.
fn first_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

/// A schema as the document holds it: `{}` for the schema that accepts anything.
fn schema_value(schema: &Schema) -> Value {
    match schema.as_value() {
        Value::Bool(true) => json!({}),
        Value::Bool(false) => json!({"not": {}}),
        other => other.clone(),
    }
}

impl Document {
    fn service(&mut self, service: &ServiceDescription, settings: &Settings) {
        let name = service.name;
        let mut summary = Vec::new();
        for ep in &service.entrypoints {
            let schemas = service.schemas.of(ep.method.name);
            let docs = schemas.map_or("", |s| s.docs);
            let (described, text) = match &ep.description {
                Description::Operations(operations) => {
                    for operation in operations {
                        self.operation(
                            name,
                            &ep.method,
                            schemas,
                            &ep.expected_exceptions,
                            operation,
                        );
                    }
                    ("operations", None)
                }
                Description::NotMessaging { summary } => ("not messaging", Some(summary.clone())),
                _ => ("undescribed", None),
            };
            summary.push(match &text {
                Some(text) => format!("`{}` ({}: {text})", ep.method.name, ep.kind),
                None if described == "undescribed" => {
                    format!("`{}` ({}, not described)", ep.method.name, ep.kind)
                }
                None => format!("`{}` ({})", ep.method.name, ep.kind),
            });
            let mut entry = json!({
                "service": name,
                "method": ep.method.name,
                "kind": ep.kind,
                "described": described,
            });
            if let Some(text) = text {
                entry["summary"] = json!(text);
            }
            if let Some(line) = first_line(docs) {
                entry["doc"] = json!(line);
            }
            self.entrypoints.push(entry);
        }
        self.dispatches(service, settings);
        self.tags.push(json!({"name": name}));
        self.lines
            .push(format!("- `{name}`: {}", summary.join(", ")));
    }

    /// The events a service dispatches: those it declares, else any event if it holds
    /// an event dispatcher.
    fn dispatches(&mut self, service: &ServiceDescription, settings: &Settings) {
        let mut exchange =
            ExchangeDef::new(wire::event_exchange(service.name), ExchangeKind::Topic);
        exchange.auto_delete = settings.auto_delete_event_exchanges;
        let declared = &service.schemas.dispatches;
        let events: Vec<(String, Value, Option<&str>)> = if declared.is_empty() {
            if !service.has_event_dispatcher {
                return;
            }
            vec![(
                "{event_type}".to_owned(),
                json!({}),
                Some(
                    "The event type: the service declares none (`#[service(dispatches(...))]` would).",
                ),
            )]
        } else {
            declared
                .iter()
                .map(|e| (e.event_type.to_owned(), schema_value(&e.payload), None))
                .collect()
        };
        for (event_type, payload, parameter) in events {
            let mut channel = Channel::exchange(exchange.clone(), event_type.clone());
            if let Some(text) = parameter {
                channel = channel.parameter("event_type", text);
            }
            let operation = Operation::send(channel, Payload::Schema(payload)).summary(format!(
                "Dispatches `{event_type}` events on `{}` (routing key: the event type; the payload is the whole body; no reply).",
                exchange.name
            ));
            let method = Method::new("dispatch", &[]);
            let id = format!("{}.dispatch.{}", service.name, key(&event_type));
            self.operation_with_id(service.name, &id, &method, None, &[], &operation);
        }
    }

    fn operation(
        &mut self,
        service: &str,
        method: &Method,
        schemas: Option<&MethodSchemas>,
        expected: &[&'static str],
        operation: &Operation,
    ) {
        let id = format!("{service}.{}", method.name);
        self.operation_with_id(service, &id, method, schemas, expected, operation);
    }

    fn operation_with_id(
        &mut self,
        service: &str,
        id: &str,
        method: &Method,
        schemas: Option<&MethodSchemas>,
        expected: &[&'static str],
        operation: &Operation,
    ) {
        let mut id = key(id);
        if self.operations.contains_key(&id) {
            let base = id.clone();
            let mut n = 2;
            while self.operations.contains_key(&id) {
                id = format!("{base}-{n}");
                n += 1;
            }
        }
        let docs = schemas.map_or("", |s| s.docs);
        let channel_id = self.channel(&operation.channel);
        let message_id = match operation.message {
            Payload::Arguments => format!("{id}.request"),
            _ => id.clone(),
        };
        let mut request = message(service, &id, method, schemas, &operation.message, expected);
        if let Some(key) = &operation.routing_key {
            request["x-nameko-routing-key"] = json!(key);
        }
        self.add_message(&channel_id, &message_id, request);

        let mut description = docs.to_owned();
        if let Some(summary) = &operation.summary {
            if !description.is_empty() {
                description.push_str("\n\n");
            }
            description.push_str(summary);
        }
        let mut out = json!({
            "action": operation.action.as_str(),
            "channel": {"$ref": format!("#/channels/{channel_id}")},
            "title": id,
            "tags": [{"name": service}],
            "messages": [{"$ref": format!("#/channels/{channel_id}/messages/{message_id}")}],
            "bindings": {"amqp": match operation.action {
                Action::Receive => json!({"ack": true, "bindingVersion": AMQP_BINDING}),
                Action::Send => json!({"deliveryMode": 2, "bindingVersion": AMQP_BINDING}),
            }},
        });
        if let Some(line) = first_line(&description) {
            out["summary"] = json!(line);
        }
        if !description.is_empty() {
            out["description"] = json!(description);
        }
        if let Some(reply) = &operation.reply {
            let reply_channel = self.reply_channel(&channel_id, &operation.channel);
            let reply_id = format!("{id}.reply");
            let answer = message(service, &id, method, schemas, reply, expected);
            self.add_message(&reply_channel, &reply_id, answer);
            out["reply"] = json!({
                "address": {
                    "location": "$message.header#/reply_to",
                    "description": "The request's `reply_to` property: the routing key of the caller's reply queue.",
                },
                "channel": {"$ref": format!("#/channels/{reply_channel}")},
                "messages": [{"$ref": format!("#/channels/{reply_channel}/messages/{reply_id}")}],
            });
        }
        self.operations.insert(id, out);
    }

    /// Adds a message to `components/messages` and to its channel.
    fn add_message(&mut self, channel: &str, id: &str, message: Value) {
        self.messages.insert(id.to_owned(), message);
        if let Some(messages) = self.channels[channel]["messages"].as_object_mut() {
            messages.insert(id.to_owned(), component_ref("messages", id));
        }
    }

    /// The channel's id, adding it the first time.
    fn channel(&mut self, channel: &Channel) -> String {
        let id = match (&channel.queue, &channel.exchange) {
            (Some((queue, _)), _) => key(queue),
            (None, Some((exchange, routing_key))) => {
                key(&format!("{}.{routing_key}", exchange.name))
            }
            (None, None) => "unnamed".to_owned(),
        };
        if self.channels.contains_key(&id) {
            return id;
        }
        let (binding, description) = match (&channel.queue, &channel.exchange) {
            (Some((queue, options)), exchange) => {
                let description = match exchange {
                    Some((exchange, key)) => format!(
                        "Queue `{queue}`, bound to the {} exchange `{}` with `{key}`.",
                        exchange_kind(exchange.kind),
                        exchange.name
                    ),
                    None => format!("Queue `{queue}`."),
                };
                (
                    json!({
                        "is": "queue",
                        "queue": {
                            "name": queue,
                            "durable": options.durable,
                            "exclusive": options.exclusive,
                            "autoDelete": options.auto_delete,
                        },
                        "bindingVersion": AMQP_BINDING,
                    }),
                    description,
                )
            }
            (None, Some((exchange, routing_key))) => (
                json!({
                    "is": "routingKey",
                    "exchange": exchange_binding(exchange),
                    "bindingVersion": AMQP_BINDING,
                }),
                format!(
                    "Messages published on the {} exchange `{}` with the routing key `{routing_key}`.",
                    exchange_kind(exchange.kind),
                    exchange.name
                ),
            ),
            (None, None) => (json!({}), String::new()),
        };
        let mut out = json!({
            "address": channel.address(),
            "description": description,
            "messages": {},
            "bindings": {"amqp": binding},
        });
        if let (Some(_), Some((exchange, key))) = (&channel.queue, &channel.exchange) {
            out["x-nameko-binding"] = json!({
                "exchange": exchange_binding(exchange),
                "bindingKey": key,
            });
        }
        if !channel.parameters.is_empty() {
            let parameters: Map<String, Value> = channel
                .parameters
                .iter()
                .map(|(name, text)| (name.clone(), json!({"description": text})))
                .collect();
            out["parameters"] = Value::Object(parameters);
        }
        self.channels.insert(id.clone(), out);
        id
    }

    /// The channel of the replies to the requests of `request_channel`: the callers'
    /// reply queues, whose address each request gives.
    fn reply_channel(&mut self, request_channel: &str, channel: &Channel) -> String {
        let id = format!("{request_channel}.replies");
        if !self.channels.contains_key(&id) {
            let mut out = json!({
                "address": null,
                "description": format!(
                    "The replies to the requests of `{}`: published on the RPC exchange with the request's `reply_to` as routing key, to the caller's reply queue (`rpc.reply-<caller>-<uuid>`, one per caller).",
                    channel.address()
                ),
                "messages": {},
            });
            if let Some((exchange, _)) = &channel.exchange {
                out["bindings"] = json!({"amqp": {
                    "is": "routingKey",
                    "exchange": exchange_binding(exchange),
                    "bindingVersion": AMQP_BINDING,
                }});
            }
            self.channels.insert(id.clone(), out);
        }
        id
    }
}

/// A message carrying `payload` for `method`.
fn message(
    service: &str,
    id: &str,
    method: &Method,
    schemas: Option<&MethodSchemas>,
    payload: &Payload,
    expected: &[&'static str],
) -> Value {
    let docs = schemas.map_or("", |s| s.docs);
    let param = |index: usize| {
        schemas
            .filter(|s| s.params.len() == method.params.len())
            .and_then(|s| s.params.get(index))
            .map_or_else(|| json!({}), schema_value)
    };
    let context = component_ref("messageTraits", CONTEXT_TRAIT);
    match payload {
        Payload::Arguments => {
            let names: Vec<&str> = method.param_names().collect();
            let properties: Map<String, Value> = names
                .iter()
                .enumerate()
                .map(|(i, n)| ((*n).to_owned(), param(i)))
                .collect();
            let required: Vec<&str> = method
                .params
                .iter()
                .filter(|p| p.required)
                .map(|p| p.name)
                .collect();
            let mut args = json!({
                "type": "array",
                "description": format!("Positional arguments, in the order of the parameters ({}).", names.join(", ")),
                "maxItems": names.len(),
            });
            if !names.is_empty() {
                args["items"] = Value::Array((0..names.len()).map(param).collect());
            }
            json!({
                "name": id,
                "title": format!("{id} request"),
                "summary": first_line(docs).unwrap_or_else(|| format!("A call of `{}` of `{service}`.", method.name)),
                "payload": {
                    "type": "object",
                    "description": format!(
                        "nameko's RPC request: each parameter given positionally in `args` or by name in `kwargs` (typed clients send `kwargs`). Required: {}.",
                        if required.is_empty() { "none".to_owned() } else { required.join(", ") }
                    ),
                    "required": ["args", "kwargs"],
                    "properties": {
                        "args": args,
                        "kwargs": {
                            "type": "object",
                            "description": "Keyword arguments, by parameter name.",
                            "properties": properties,
                            "additionalProperties": false,
                        },
                    },
                },
                "traits": [context, component_ref("messageTraits", REQUEST_TRAIT)],
            })
        }
        Payload::Reply => {
            let result = schemas.map_or_else(|| json!({}), |s| schema_value(&s.result));
            // `null` when the call failed.
            let result = match &result {
                Value::Object(map) if map.is_empty() || result == json!({"type": "null"}) => result,
                _ => json!({"anyOf": [result, {"type": "null"}]}),
            };
            let mut description =
                "nameko's RPC reply: the result, or the error dict when the call failed."
                    .to_owned();
            if !expected.is_empty() {
                description.push_str(&format!(
                    " Errors that are part of the method's contract (`exc_path`): {}.",
                    expected
                        .iter()
                        .map(|e| format!("`{e}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            let mut out = json!({
                "name": format!("{id}.reply"),
                "title": format!("{id} reply"),
                "summary": format!("The reply to a call of `{}` of `{service}`.", method.name),
                "description": description,
                "payload": {
                    "type": "object",
                    "required": ["result", "error"],
                    "properties": {
                        "result": result,
                        "error": {"oneOf": [{"type": "null"}, component_ref("schemas", ERROR_SCHEMA)]},
                    },
                },
                "traits": [component_ref("messageTraits", REPLY_TRAIT)],
            });
            if !expected.is_empty() {
                out["x-nameko-expected-exceptions"] = json!(expected);
            }
            out
        }
        Payload::FirstParameter => json!({
            "name": id,
            "title": id,
            "summary": first_line(docs).unwrap_or_else(|| format!("What `{}` of `{service}` receives.", method.name)),
            "payload": param(0),
            "traits": [context],
        }),
        Payload::Schema(schema) => json!({
            "name": id,
            "title": id,
            "payload": schema,
            "traits": [context],
        }),
        _ => json!({"name": id, "payload": {}, "traits": [context]}),
    }
}

impl Document {
    /// The document's description: the services, then how nameko's messages go.
    fn overview(&self, settings: &Settings) -> String {
        format!(
            "The services of this binary, on nameko's wire protocol (Python nameko 2.x and 3.x speak it too):\n\n{}\n\n\
             RPC: a request is published on the `{}` exchange with the routing key `<service>.<method>` and reaches the queue `rpc-<service>`; \
             the reply goes to the caller's reply queue (the request's `reply_to`), with the request's `correlation_id`. \
             Events: published on `<service>.events` with the event type as routing key; each handler has its own queue. \
             Messages are JSON (`application/json`, `utf-8`), persistent; services send their callers' context as `nameko.*` headers.",
            self.lines.join("\n"),
            settings.rpc_exchange
        )
    }
}
