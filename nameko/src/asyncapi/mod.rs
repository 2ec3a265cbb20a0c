//! AsyncAPI 3.0 documents of the services of a binary: `<service binary> asyncapi`, or
//! [`asyncapi`](crate::asyncapi()) from code.
//!
//! The document describes what the services exchange on the broker, as nameko's wire
//! protocol has it, so that any client (a Python nameko service, a generated client, a
//! person reading the rendered page) knows the channels, the operations and the messages'
//! schemas:
//!
//! - **servers**: the brokers of `AMQP_URI` (passwords hidden, as everywhere);
//! - **channels**: one per RPC queue (`rpc-<service>`, bound to `nameko-rpc` with
//!   `<service>.*`), one per event handler queue (`evt-<source>-<type>--<service>.<method>`),
//!   one per `consume` queue, one per event a service dispatches (`<service>.events` with
//!   the event type), and one for the replies of each RPC queue (the caller's reply queue,
//!   whose address is the request's `reply_to`);
//! - **operations**: `receive` for each `#[rpc]` (request/reply: the request's routing
//!   key is `<service>.<method>`), each event handler and each consumer; `send` for the
//!   events a service dispatches: those declared with
//!   `#[service(name = "...", dispatches("order_placed" = OrderPlaced))]`, or, for a
//!   service holding an [`EventDispatcher`](crate::prelude::EventDispatcher) that declares
//!   none, one operation whose routing key is the parameter `{event_type}`;
//! - **messages**: an RPC request is `{"args": [...], "kwargs": {...}}` with each
//!   parameter's JSON schema; its reply is `{"result": ..., "error": ...}` with the
//!   result's schema and nameko's error dict (`components/schemas/NamekoError`); an event
//!   or consumed message is the method's first parameter. Messages sent by services carry
//!   nameko's context headers (`nameko.call_id_stack`, `nameko.user_id`, ...: the message
//!   trait `nameko-context`), RPC messages a `correlation_id` (`nameko-rpc-request`,
//!   `nameko-rpc-reply`).
//!
//! Schemas come from the Rust types, through schemars: `#[service]` asks each parameter
//! and result type for its `JsonSchema`. A type that does not implement it still compiles
//! and is shown untyped (`{}`); derive it to document it:
//!
//! ```
//! use nameko::prelude::*;
//! use nameko::schemars::JsonSchema;
//! use nameko::serde::{Deserialize, Serialize};
//!
//! /// An order line.
//! #[derive(Debug, Serialize, Deserialize, JsonSchema)]
//! #[serde(crate = "nameko::serde")]
//! #[schemars(crate = "nameko::schemars")]
//! pub struct Line {
//!     /// The product.
//!     pub sku: String,
//!     /// How many.
//!     pub quantity: u32,
//! }
//!
//! #[derive(Dependencies)]
//! struct Orders;
//!
//! #[service(name = "orders")]
//! impl Orders {
//!     /// Totals the lines.
//!     #[rpc]
//!     async fn count(&self, lines: Vec<Line>) -> u32 {
//!         lines.iter().map(|l| l.quantity).sum()
//!     }
//! }
//!
//! let document = nameko::asyncapi(nameko::services![Orders]).document()?;
//! let request = &document["components"]["messages"]["orders.count.request"];
//! let lines = &request["payload"]["properties"]["kwargs"]["properties"]["lines"];
//! assert_eq!(lines["items"]["$ref"], "#/components/schemas/Line");
//! assert_eq!(document["components"]["schemas"]["Line"]["required"], serde_json::json!(["sku", "quantity"]));
//! # Ok::<(), nameko::asyncapi::AsyncApiError>(())
//! ```
//!
//! Entrypoints describe themselves ([`Entrypoint::describe`](crate::extension::Entrypoint::describe)):
//! the built-in ones do, an entrypoint of another crate says which channels it uses or
//! that it takes no broker messages (`#[http]`, timers, `#[cron]`); those are listed in
//! the document's `x-nameko-entrypoints` and its description, with no channel, and so are
//! entrypoints that describe nothing.
//!
//! The document validates with the official parser (`@asyncapi/parser`; the repository's
//! tests run it), and renders to HTML with the AsyncAPI generator's `html` template.

mod document;
mod wire;

use std::fmt;

use nameko_core::config::{AMQP_URI, Config, ConfigError};
use nameko_core::service::schema::ServiceDescription;

use crate::cli::Cli;
use crate::connect::ConnectError;

pub(crate) use document::Describe;

/// The AsyncAPI version of the documents.
pub const ASYNCAPI_VERSION: &str = "3.0.0";

/// The AsyncAPI document of the services of a [`Cli`]: made by [`asyncapi`](crate::asyncapi()).
///
/// ```
/// use nameko::prelude::*;
///
/// #[derive(Dependencies)]
/// struct Calculator;
///
/// #[service(name = "calculator")]
/// impl Calculator {
///     #[rpc]
///     async fn add(&self, a: f64, b: f64) -> f64 {
///         a + b
///     }
/// }
///
/// let config = Config::new().with("AMQP_URI", "amqp://guest:secret@rabbit:5672/");
/// let api = nameko::asyncapi(nameko::services![Calculator])
///     .config(config)
///     .title("Calculator")
///     .version("1.2.0");
/// let yaml = api.to_yaml()?;
/// assert!(yaml.starts_with("asyncapi: 3.0.0\n"));
/// assert!(yaml.contains("guest:***@rabbit"));
/// assert!(!yaml.contains("secret"));
/// # Ok::<(), nameko::asyncapi::AsyncApiError>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct AsyncApi {
    services: Vec<(&'static str, Describe)>,
    config: Config,
    title: Option<String>,
    version: String,
}

impl fmt::Debug for AsyncApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncApi")
            .field(
                "services",
                &self.services.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            )
            .field("config", &self.config)
            .field("title", &self.title)
            .field("version", &self.version)
            .finish()
    }
}

/// The formats of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// JSON, indented.
    #[default]
    Json,
    /// YAML, block style.
    Yaml,
}

/// A document could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AsyncApiError {
    /// The configuration is not valid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// `AMQP_URI` names no broker nameko-rs connects to.
    #[error("AMQP_URI: {0}")]
    Broker(#[from] ConnectError),
    /// The document could not be written as JSON.
    #[error("cannot write the document: {0}")]
    Json(#[from] serde_json::Error),
}

/// The AsyncAPI document of the services of `cli` (`nameko::services![...]`), for its
/// default broker until [`AsyncApi::config`] gives a configuration.
pub fn asyncapi(cli: Cli) -> AsyncApi {
    let config = Config::new().with(AMQP_URI, cli.default_broker_uri());
    AsyncApi {
        services: cli.describers(),
        config,
        title: None,
        version: "1.0.0".to_owned(),
    }
}

impl AsyncApi {
    /// Describes the services under this configuration: its brokers, its `rpc_exchange`,
    /// `AUTO_DELETE_EVENT_EXCHANGES` and `parent_calls_tracked`.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The document's title (`info.title`); by default, the services' names.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    /// The version of the API the document describes (`info.version`); `1.0.0` by
    /// default.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// The services, as their entrypoints and schemas describe them.
    ///
    /// # Errors
    ///
    /// [`AsyncApiError::Config`] when the configuration's settings are invalid.
    pub fn services(&self) -> Result<Vec<ServiceDescription>, AsyncApiError> {
        let settings = self.config.settings()?;
        let mut generator = document::schema_generator();
        Ok(self
            .services
            .iter()
            .map(|(_, describe)| describe(&settings, &mut generator))
            .collect())
    }

    /// The document, as JSON.
    ///
    /// # Errors
    ///
    /// [`AsyncApiError::Config`] for an invalid configuration, [`AsyncApiError::Broker`]
    /// for an `AMQP_URI` that names no broker.
    pub fn document(&self) -> Result<serde_json::Value, AsyncApiError> {
        self.map().map(serde_json::Value::Object)
    }

    fn map(&self) -> Result<serde_json::Map<String, serde_json::Value>, AsyncApiError> {
        let title = self.title.clone().unwrap_or_else(|| {
            let names: Vec<&str> = self.services.iter().map(|(n, _)| *n).collect();
            format!("nameko services: {}", names.join(", "))
        });
        document::build(&self.config, &self.services, &title, &self.version)
    }

    /// The document as indented JSON, ending with a newline.
    ///
    /// # Errors
    ///
    /// As [`AsyncApi::document`].
    pub fn to_json(&self) -> Result<String, AsyncApiError> {
        let mut text = serde_json::to_string_pretty(&self.document()?)?;
        text.push('\n');
        Ok(text)
    }

    /// The document as YAML.
    ///
    /// # Errors
    ///
    /// As [`AsyncApi::document`].
    pub fn to_yaml(&self) -> Result<String, AsyncApiError> {
        // The config's writer writes any JSON object as YAML that reads back the same.
        Ok(Config::from(self.map()?).to_yaml_string())
    }

    /// The document in `format`.
    ///
    /// # Errors
    ///
    /// As [`AsyncApi::document`].
    pub fn render(&self, format: Format) -> Result<String, AsyncApiError> {
        match format {
            Format::Json => self.to_json(),
            Format::Yaml => self.to_yaml(),
        }
    }
}
