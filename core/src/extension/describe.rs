//! How an entrypoint describes the messages it takes, for documents of a service's
//! messaging (`<service binary> asyncapi`): [`Entrypoint::describe`](super::Entrypoint::describe).
//!
//! An entrypoint says which [`Operation`]s it performs: it receives messages on a queue,
//! or sends them on an exchange with a routing key (a [`Channel`]), and what each message
//! carries (a [`Payload`]: the method's arguments, its first parameter, its reply, or a
//! schema of the entrypoint's own). Entrypoints that take no messages (timers, HTTP
//! routes) say what they do instead ([`Description::NotMessaging`]), and those that say
//! nothing are listed as undescribed.
//!
//! ```
//! use nameko_core::extension::{Channel, DescribeContext, Description, Operation, Payload};
//! use nameko_core::messaging::ExchangeDef;
//! use nameko_core::transport::{ExchangeKind, QueueOptions};
//!
//! // What an entrypoint consuming `audit-log`, bound to `audit` with `audit.#`, describes.
//! fn describe(ctx: &DescribeContext<'_>) -> Description {
//!     let channel = Channel::queue("audit-log", QueueOptions::durable())
//!         .bound_to(ExchangeDef::new("audit", ExchangeKind::Topic), "audit.#");
//!     Description::operation(
//!         Operation::receive(channel, Payload::FirstParameter)
//!             .summary(format!("`{}` logs audit records", ctx.method().name)),
//!     )
//! }
//! # let config = nameko_core::config::Config::new();
//! # let settings = config.settings().unwrap();
//! # let method = nameko_core::method::Method::new("log", &[]);
//! # let ctx = DescribeContext::new("audit", &method, &settings);
//! # assert!(matches!(describe(&ctx), Description::Operations(ops) if ops.len() == 1));
//! ```

use serde_json::Value;

use crate::config::Settings;
use crate::messaging::ExchangeDef;
use crate::method::Method;
use crate::transport::QueueOptions;

/// What an entrypoint tells about the messages it takes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Description {
    /// Nothing: the default. Documents list the entrypoint, with its kind, among those not
    /// described.
    Undescribed,
    /// It takes no messages (a timer, an HTTP route): documents list it with this summary
    /// (`"every 5 s"`, ``"HTTP `GET /get/<int:value>`"``) and no channel.
    NotMessaging {
        /// What fires it, in a few words of Markdown.
        summary: String,
    },
    /// The operations it performs on the broker.
    Operations(Vec<Operation>),
}

impl Description {
    /// One operation.
    #[must_use]
    pub fn operation(operation: Operation) -> Self {
        Self::Operations(vec![operation])
    }

    /// Takes no messages; `summary` says what fires it.
    #[must_use]
    pub fn not_messaging(summary: impl Into<String>) -> Self {
        Self::NotMessaging {
            summary: summary.into(),
        }
    }
}

/// Whether an operation takes messages from the broker or puts them there (AsyncAPI's
/// `receive` and `send`, from the service's side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The service consumes these messages.
    Receive,
    /// The service publishes these messages.
    Send,
}

impl Action {
    /// `"receive"` or `"send"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Receive => "receive",
            Self::Send => "send",
        }
    }
}

/// One operation of an entrypoint: messages received or sent on one channel, and the
/// reply, for request/reply.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Operation {
    /// Received or sent.
    pub action: Action,
    /// Where.
    pub channel: Channel,
    /// What each message carries.
    pub message: Payload,
    /// The reply each message gets, published to the caller's reply queue (nameko's
    /// `reply_to`), if any.
    pub reply: Option<Payload>,
    /// The routing key of the operation's messages, when it is narrower than the
    /// channel's (`calculator.add` on `rpc-calculator`, bound with `calculator.*`).
    pub routing_key: Option<String>,
    /// A line about the operation; the method's documentation goes beside it.
    pub summary: Option<String>,
}

impl Operation {
    /// The service receives messages carrying `message` on `channel`.
    #[must_use]
    pub fn receive(channel: Channel, message: Payload) -> Self {
        Self::new(Action::Receive, channel, message)
    }

    /// The service sends messages carrying `message` on `channel`.
    #[must_use]
    pub fn send(channel: Channel, message: Payload) -> Self {
        Self::new(Action::Send, channel, message)
    }

    fn new(action: Action, channel: Channel, message: Payload) -> Self {
        Self {
            action,
            channel,
            message,
            reply: None,
            routing_key: None,
            summary: None,
        }
    }

    /// Each message is answered with `reply`, published to the caller's reply queue.
    #[must_use]
    pub fn reply(mut self, reply: Payload) -> Self {
        self.reply = Some(reply);
        self
    }

    /// The routing key of this operation's messages.
    #[must_use]
    pub fn routing_key(mut self, key: impl Into<String>) -> Self {
        self.routing_key = Some(key.into());
        self
    }

    /// A line about the operation.
    #[must_use]
    pub fn summary(mut self, summary: impl Into<String>) -> Self {
        self.summary = Some(summary.into());
        self
    }
}

/// Where messages go: a queue (what a consumer reads, with the binding that fills it), or
/// an exchange and a routing key (what a publisher writes).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Channel {
    /// The queue consumed, with its declaration, for channels that are queues.
    pub queue: Option<(String, QueueOptions)>,
    /// The exchange, with the routing key messages are published with (or, for a queue,
    /// the binding key that routes them to it).
    pub exchange: Option<(ExchangeDef, String)>,
    /// What the `{placeholders}` of the queue name or routing key stand for (a
    /// broadcast handler's `{identifier}`), by name.
    pub parameters: Vec<(String, String)>,
}

impl Channel {
    /// A queue, declared with `options`.
    #[must_use]
    pub fn queue(name: impl Into<String>, options: QueueOptions) -> Self {
        Self {
            queue: Some((name.into(), options)),
            exchange: None,
            parameters: Vec::new(),
        }
    }

    /// Messages published on `exchange` with `routing_key`.
    #[must_use]
    pub fn exchange(exchange: ExchangeDef, routing_key: impl Into<String>) -> Self {
        Self {
            queue: None,
            exchange: Some((exchange, routing_key.into())),
            parameters: Vec::new(),
        }
    }

    /// The queue is bound to `exchange` with `binding_key`.
    #[must_use]
    pub fn bound_to(mut self, exchange: ExchangeDef, binding_key: impl Into<String>) -> Self {
        self.exchange = Some((exchange, binding_key.into()));
        self
    }

    /// `{name}` in the queue name or routing key stands for what `description` says.
    #[must_use]
    pub fn parameter(mut self, name: impl Into<String>, description: impl Into<String>) -> Self {
        self.parameters.push((name.into(), description.into()));
        self
    }

    /// The channel's address: the queue's name, or else the routing key.
    #[must_use]
    pub fn address(&self) -> &str {
        match (&self.queue, &self.exchange) {
            (Some((queue, _)), _) => queue,
            (None, Some((_, key))) => key,
            (None, None) => "",
        }
    }
}

/// What a message carries, in terms of the entrypoint's method.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Payload {
    /// nameko's RPC request body: the method's parameters as `{"args": [...], "kwargs":
    /// {...}}`.
    Arguments,
    /// The whole body is the method's first parameter (events, `consume`).
    FirstParameter,
    /// nameko's RPC reply body: `{"result": <what the method returns>, "error": <error
    /// dict or null>}`.
    Reply,
    /// A body of this JSON schema.
    Schema(Value),
}

/// What an entrypoint gets to describe itself: its service, its method, and the settings
/// of the configuration the document is made for.
#[derive(Debug, Clone, Copy)]
pub struct DescribeContext<'a> {
    service: &'a str,
    method: &'a Method,
    settings: &'a Settings,
}

impl<'a> DescribeContext<'a> {
    /// The context of `method` of `service` under `settings`.
    #[must_use]
    pub fn new(service: &'a str, method: &'a Method, settings: &'a Settings) -> Self {
        Self {
            service,
            method,
            settings,
        }
    }

    /// The service's name.
    #[must_use]
    pub fn service_name(&self) -> &'a str {
        self.service
    }

    /// The method the entrypoint runs.
    #[must_use]
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The configuration's settings (`rpc_exchange`, `AUTO_DELETE_EVENT_EXCHANGES`, ...).
    #[must_use]
    pub fn settings(&self) -> &'a Settings {
        self.settings
    }
}
