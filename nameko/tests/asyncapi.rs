//! AsyncAPI documents of services: channels and operations of every built-in entrypoint,
//! schemas from the Rust types (untyped when a type has none), events dispatched,
//! entrypoints that take no messages or describe nothing, servers without passwords, and
//! the `asyncapi` command. (The official parser reads the example cluster's document in
//! the examples' tests.)

use nameko::asyncapi::AsyncApiError;
use nameko::extension::{Entrypoint, EntrypointContext, ExtensionError};
use nameko::prelude::*;
use nameko::schemars::JsonSchema;
use nameko::serde::{Deserialize, Serialize};

/// A shipment.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(crate = "nameko::serde")]
#[schemars(crate = "nameko::schemars")]
pub struct Shipment {
    /// Where to.
    pub address: String,
    /// How heavy, in grams.
    pub grams: u32,
}

/// A parameter type without a JSON schema.
#[derive(Debug, Deserialize)]
#[serde(crate = "nameko::serde")]
pub struct Opaque {
    /// What it holds.
    pub inner: String,
}

/// An entrypoint that says nothing about itself.
#[derive(Debug)]
pub struct Silent;

#[async_trait::async_trait]
impl Entrypoint for Silent {
    fn kind(&self) -> &'static str {
        "silent"
    }

    async fn setup(&mut self, _ctx: &EntrypointContext) -> Result<(), ExtensionError> {
        Ok(())
    }
}

macro_rules! silent {
    () => {
        Silent
    };
}

#[derive(Dependencies)]
struct Shipping {
    events: EventDispatcher,
}

#[service(name = "shipping", dispatches("shipped" = Shipment, "lost"))]
impl Shipping {
    /// Ships a parcel.
    ///
    /// Returns its tracking number.
    #[rpc]
    async fn ship(&self, shipment: Shipment, express: Option<bool>) -> Result<u64, RpcError> {
        let _ = (express, &self.events);
        Ok(u64::from(shipment.grams))
    }

    #[rpc]
    async fn inspect(&self, thing: Opaque) -> String {
        thing.inner
    }

    #[rpc]
    async fn ping(&self) {}

    #[event_handler("orders", "order_placed")]
    async fn on_order(&self, order: Value) {
        let _ = order;
    }

    #[event_handler("fleet", "truck_ready", handler_type = broadcast, reliable_delivery = false)]
    async fn on_truck(&self, truck: Value) {
        let _ = truck;
    }

    #[consume(queue = "returns", exchange = "warehouse", routing_key = "returns.*")]
    async fn on_return(&self, shipment: Shipment) {
        let _ = shipment;
    }

    #[timer(interval = 30)]
    async fn sweep(&self) {}

    #[silent]
    async fn hidden(&self) {}
}

#[derive(Dependencies)]
struct Announcer {
    events: EventDispatcher,
}

#[service(name = "announcer")]
impl Announcer {
    #[rpc]
    async fn announce(&self, text: String) -> Result<(), EventError> {
        self.events.dispatch("announced", text).await
    }
}

fn document(config: Config) -> Value {
    nameko::asyncapi(nameko::services![Shipping, Announcer])
        .config(config)
        .document()
        .unwrap()
}

fn memory() -> Config {
    Config::new().with("AMQP_URI", "memory://")
}

#[test]
fn rpc_methods_are_request_reply_operations_on_the_service_queue() {
    let doc = document(memory());
    assert_eq!(doc["asyncapi"], "3.0.0");
    let channel = &doc["channels"]["rpc-shipping"];
    assert_eq!(channel["address"], "rpc-shipping");
    assert_eq!(channel["bindings"]["amqp"]["is"], "queue");
    assert_eq!(channel["bindings"]["amqp"]["queue"]["durable"], true);
    assert_eq!(
        channel["x-nameko-binding"]["exchange"]["name"],
        "nameko-rpc"
    );
    assert_eq!(channel["x-nameko-binding"]["bindingKey"], "shipping.*");

    let ship = &doc["operations"]["shipping.ship"];
    assert_eq!(ship["action"], "receive");
    assert_eq!(ship["channel"]["$ref"], "#/channels/rpc-shipping");
    assert_eq!(ship["summary"], "Ships a parcel.");
    assert_eq!(
        ship["description"],
        "Ships a parcel.\n\nReturns its tracking number."
    );
    assert_eq!(
        ship["messages"][0]["$ref"],
        "#/channels/rpc-shipping/messages/shipping.ship.request"
    );
    assert_eq!(
        ship["reply"]["channel"]["$ref"],
        "#/channels/rpc-shipping.replies"
    );
    assert_eq!(
        doc["channels"]["rpc-shipping.replies"]["address"],
        Value::Null
    );

    let request = &doc["components"]["messages"]["shipping.ship.request"];
    assert_eq!(request["x-nameko-routing-key"], "shipping.ship");
    let kwargs = &request["payload"]["properties"]["kwargs"]["properties"];
    assert_eq!(kwargs["shipment"]["$ref"], "#/components/schemas/Shipment");
    assert_eq!(kwargs["express"]["type"], json!(["boolean", "null"]));
    assert_eq!(
        request["payload"]["properties"]["args"]["items"][0]["$ref"],
        "#/components/schemas/Shipment"
    );
    assert!(
        request["payload"]["description"]
            .as_str()
            .unwrap()
            .ends_with("Required: shipment."),
        "{request}"
    );
    let shipment = &doc["components"]["schemas"]["Shipment"];
    assert_eq!(shipment["required"], json!(["address", "grams"]));
    assert_eq!(
        shipment["properties"]["address"]["description"],
        "Where to."
    );

    let reply = &doc["components"]["messages"]["shipping.ship.reply"];
    let result = &reply["payload"]["properties"]["result"];
    assert_eq!(result["anyOf"][0]["type"], "integer");
    assert_eq!(
        reply["payload"]["properties"]["error"]["oneOf"][1]["$ref"],
        "#/components/schemas/NamekoError"
    );
    assert_eq!(
        doc["components"]["schemas"]["NamekoError"]["required"],
        json!(["exc_type", "exc_path", "exc_args", "value"])
    );
}

#[test]
fn types_without_a_schema_are_untyped_and_no_result_is_null() {
    let doc = document(memory());
    let messages = &doc["components"]["messages"];
    assert_eq!(
        messages["shipping.inspect.request"]["payload"]["properties"]["kwargs"]["properties"]["thing"],
        json!({})
    );
    assert_eq!(
        messages["shipping.ping.reply"]["payload"]["properties"]["result"],
        json!({"type": "null"})
    );
    assert_eq!(
        messages["shipping.ping.request"]["payload"]["properties"]["args"]["maxItems"],
        0
    );
}

#[test]
fn nameko_headers_and_correlation_ids_are_message_traits() {
    let doc = document(
        Config::new()
            .with("AMQP_URI", "memory://")
            .with("parent_calls_tracked", 3),
    );
    let request = &doc["components"]["messages"]["shipping.ship.request"];
    assert_eq!(
        request["traits"],
        json!([
            {"$ref": "#/components/messageTraits/nameko-context"},
            {"$ref": "#/components/messageTraits/nameko-rpc-request"},
        ])
    );
    let traits = &doc["components"]["messageTraits"];
    assert_eq!(
        traits["nameko-context"]["headers"]["$ref"],
        "#/components/schemas/NamekoContextHeaders"
    );
    assert_eq!(
        traits["nameko-rpc-request"]["correlationId"]["location"],
        "$message.header#/correlation_id"
    );
    let headers = &doc["components"]["schemas"]["NamekoContextHeaders"];
    assert_eq!(headers["properties"]["nameko.call_id_stack"]["maxItems"], 4);
    assert!(headers["properties"]["nameko.auth_token"].is_object());
}

#[test]
fn event_handlers_and_consumers_receive_on_their_queues() {
    let doc = document(memory());
    let queue = "evt-orders-order_placed--shipping.on_order";
    let channel = &doc["channels"][queue];
    assert_eq!(channel["address"], queue);
    assert_eq!(
        channel["x-nameko-binding"]["exchange"]["name"],
        "orders.events"
    );
    assert_eq!(channel["x-nameko-binding"]["bindingKey"], "order_placed");
    assert_eq!(doc["operations"]["shipping.on_order"]["action"], "receive");
    assert_eq!(
        doc["components"]["messages"]["shipping.on_order"]["payload"],
        json!({})
    );

    // A broadcast queue's random identifier is a parameter of the channel.
    let broadcast = "evt-fleet-truck_ready--shipping.on_truck-_identifier_";
    let channel = &doc["channels"][broadcast];
    assert_eq!(
        channel["address"],
        "evt-fleet-truck_ready--shipping.on_truck-{identifier}"
    );
    assert!(channel["parameters"]["identifier"]["description"].is_string());
    assert_eq!(channel["bindings"]["amqp"]["queue"]["exclusive"], true);

    let consumed = &doc["channels"]["returns"];
    assert_eq!(
        consumed["x-nameko-binding"]["exchange"]["name"],
        "warehouse"
    );
    assert_eq!(consumed["x-nameko-binding"]["bindingKey"], "returns.*");
    assert_eq!(
        doc["components"]["messages"]["shipping.on_return"]["payload"]["$ref"],
        "#/components/schemas/Shipment"
    );
}

#[test]
fn declared_events_are_send_operations_and_a_dispatcher_alone_any_event() {
    let doc = document(memory());
    let shipped = &doc["operations"]["shipping.dispatch.shipped"];
    assert_eq!(shipped["action"], "send");
    assert_eq!(
        shipped["channel"]["$ref"],
        "#/channels/shipping.events.shipped"
    );
    let channel = &doc["channels"]["shipping.events.shipped"];
    assert_eq!(channel["address"], "shipped");
    assert_eq!(channel["bindings"]["amqp"]["is"], "routingKey");
    assert_eq!(
        channel["bindings"]["amqp"]["exchange"]["name"],
        "shipping.events"
    );
    assert_eq!(
        doc["components"]["messages"]["shipping.dispatch.shipped"]["payload"]["$ref"],
        "#/components/schemas/Shipment"
    );
    assert_eq!(
        doc["components"]["messages"]["shipping.dispatch.lost"]["payload"],
        json!({})
    );

    // `announcer` declares nothing: one operation for any event type.
    let any = &doc["channels"]["announcer.events._event_type_"];
    assert_eq!(any["address"], "{event_type}");
    assert!(any["parameters"]["event_type"].is_object());
    assert_eq!(
        doc["operations"]["announcer.dispatch._event_type_"]["action"],
        "send"
    );
}

#[test]
fn entrypoints_without_messages_are_listed_without_channels() {
    let doc = document(memory());
    let entrypoints = doc["x-nameko-entrypoints"].as_array().unwrap();
    let find = |method: &str| {
        entrypoints
            .iter()
            .find(|e| e["method"] == method)
            .unwrap_or_else(|| panic!("no entrypoint {method}"))
    };
    assert_eq!(
        find("sweep"),
        &json!({"service": "shipping", "method": "sweep", "kind": "timer", "described": "not messaging", "summary": "every 30 s"})
    );
    assert_eq!(find("hidden")["described"], "undescribed");
    assert_eq!(find("hidden")["kind"], "silent");
    assert_eq!(find("ship")["described"], "operations");
    assert_eq!(find("ship")["doc"], "Ships a parcel.");
    let operations = doc["operations"].as_object().unwrap();
    assert!(!operations.contains_key("shipping.sweep"));
    assert!(!operations.contains_key("shipping.hidden"));
    let description = doc["info"]["description"].as_str().unwrap();
    assert!(
        description.contains("`sweep` (timer: every 30 s)"),
        "{description}"
    );
    assert!(
        description.contains("`hidden` (silent, not described)"),
        "{description}"
    );
}

#[test]
fn servers_are_the_brokers_without_passwords() {
    let doc = document(Config::new().with(
        "AMQP_URI",
        "amqp://app:s3cret@rabbit-1:5672/prod;amqp://app:s3cret@rabbit-2:5673/prod",
    ));
    let text = doc.to_string();
    assert!(!text.contains("s3cret"), "{text}");
    let servers = doc["servers"].as_object().unwrap();
    assert_eq!(servers.len(), 2);
    assert_eq!(doc["servers"]["broker-1"]["host"], "rabbit-1:5672");
    assert_eq!(doc["servers"]["broker-2"]["host"], "rabbit-2:5673");
    assert_eq!(doc["servers"]["broker-1"]["protocol"], "amqp");
    assert_eq!(doc["servers"]["broker-1"]["pathname"], "/prod");
    assert!(
        doc["servers"]["broker-1"]["description"]
            .as_str()
            .unwrap()
            .contains("app:***@rabbit-1"),
        "{}",
        doc["servers"]["broker-1"]
    );

    let tls = document(
        Config::new()
            .with("AMQP_URI", "amqp://guest:guest@localhost/")
            .with("AMQP_SSL", true),
    );
    assert_eq!(tls["servers"]["broker"]["protocol"], "amqps");
    let memory = document(memory());
    assert_eq!(memory["servers"]["broker"]["host"], "in-process");
}

#[test]
fn the_rpc_exchange_and_event_exchange_settings_are_followed() {
    let doc = document(
        Config::new()
            .with("AMQP_URI", "memory://")
            .with("rpc_exchange", "other-rpc")
            .with("AUTO_DELETE_EVENT_EXCHANGES", true),
    );
    assert_eq!(
        doc["channels"]["rpc-shipping"]["x-nameko-binding"]["exchange"]["name"],
        "other-rpc"
    );
    assert_eq!(
        doc["channels"]["shipping.events.shipped"]["bindings"]["amqp"]["exchange"]["autoDelete"],
        true
    );
}

#[test]
fn a_broker_nameko_cannot_use_is_an_error() {
    let error = nameko::asyncapi(nameko::services![Shipping])
        .config(Config::new().with("AMQP_URI", "kafka://user:pw@host/"))
        .document()
        .unwrap_err();
    assert!(matches!(error, AsyncApiError::Broker(_)), "{error}");
    assert!(!error.to_string().contains("pw@"), "{error}");
}

#[test]
fn yaml_is_the_same_document() {
    let api = nameko::asyncapi(nameko::services![Shipping]).config(memory());
    let yaml = api.to_yaml().unwrap();
    assert!(yaml.starts_with("asyncapi: 3.0.0\ninfo:\n"), "{yaml}");
    assert!(
        yaml.contains("\"$ref\": \"#/components/schemas/Shipment\""),
        "{yaml}"
    );
    let json: Value = serde_json::from_str(&api.to_json().unwrap()).unwrap();
    assert_eq!(json, api.document().unwrap());
}

#[tokio::test]
async fn the_asyncapi_command_writes_the_document() {
    let dir = std::env::temp_dir().join(format!("nameko-asyncapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("asyncapi.yaml");
    let cli = nameko::services![Shipping, Announcer];
    let code = cli
        .clone()
        .execute([
            "shipping",
            "asyncapi",
            "--format",
            "yaml",
            "--title",
            "Shipping",
            "--api-version",
            "2.1.0",
            "-d",
            "AMQP_URI=amqp://app:pw@rabbit/",
            "--output",
            out.to_str().unwrap(),
        ])
        .await;
    assert_eq!(code, 0);
    let yaml = std::fs::read_to_string(&out).unwrap();
    assert!(yaml.contains("title: Shipping\n"), "{yaml}");
    assert!(yaml.contains("version: 2.1.0\n"), "{yaml}");
    assert!(yaml.contains("host: rabbit:5672\n"), "{yaml}");
    assert!(!yaml.contains(":pw@"), "{yaml}");

    let code = cli
        .execute(["shipping", "asyncapi", "-d", "AMQP_URI=kafka://host/"])
        .await;
    assert_eq!(code, nameko::cli::exit::USAGE);
    std::fs::remove_dir_all(&dir).unwrap();
}
