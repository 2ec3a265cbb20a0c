//! Declared topology: the exchanges, queues and bindings (of queues, with or without
//! arguments, and of exchanges to exchanges) a client has declared.
//!
//! A [`Declaration`] is one of them; a [`Topology`] is an ordered set of them. Both sides of
//! the framework use the same type:
//!
//! - an entrypoint describes what it consumes (`nameko-rpc`, its `rpc-<service>` queue and
//!   the binding between them) as a [`Topology`] and calls [`Topology::declare`] before it
//!   starts consuming;
//! - a backend records every declaration made through it ([`Topology::record`]), forgets
//!   what is deleted ([`Topology::forget_queue`], [`Topology::forget_exchange`]), and
//!   declares the rest again after a reconnection, in [`Topology::iter`]'s order.
//!
//! ```
//! use nameko_transport::topology::{Declaration, Topology};
//! use nameko_transport::{ExchangeKind, ExchangeOptions, QueueOptions};
//!
//! let mut topology = Topology::new()
//!     .with(Declaration::queue("rpc-greeting", QueueOptions::durable()))
//!     .with(Declaration::binding("rpc-greeting", "nameko-rpc", "greeting.*"))
//!     .with(Declaration::exchange("nameko-rpc", ExchangeKind::Topic, ExchangeOptions::durable()));
//! // Declared in kombu's order whatever the order of recording: exchange, queue, binding.
//! let names: Vec<String> = topology.iter().map(ToString::to_string).collect();
//! assert_eq!(
//!     names,
//!     [
//!         "exchange `nameko-rpc`",
//!         "queue `rpc-greeting`",
//!         "binding of queue `rpc-greeting` to exchange `nameko-rpc` with key `greeting.*`",
//!     ]
//! );
//! // Deleting the queue takes its bindings with it.
//! topology.forget_queue("rpc-greeting");
//! assert_eq!(topology.len(), 1);
//! ```

use std::fmt;

use crate::{ExchangeKind, ExchangeOptions, FieldTable, QueueOptions, Transport, TransportError};

/// One declaration of AMQP topology: an exchange, a queue, a binding of a queue to an
/// exchange, or a binding of an exchange to an exchange.
///
/// The enum is exhaustive on purpose: these are the things nameko declares, and a
/// backend that replays declarations handles each of them.
#[derive(Debug, Clone, PartialEq)]
pub enum Declaration {
    /// An exchange ([`Transport::declare_exchange`]).
    Exchange {
        /// The exchange's name.
        name: String,
        /// How it routes.
        kind: ExchangeKind,
        /// Its flags.
        options: ExchangeOptions,
    },
    /// A queue ([`Transport::declare_queue`]).
    Queue {
        /// The queue's name.
        name: String,
        /// Its flags and arguments.
        options: QueueOptions,
    },
    /// A binding of a queue to an exchange ([`Transport::bind_queue`], or
    /// [`Transport::bind_queue_with_arguments`] when it has arguments).
    Binding {
        /// The bound queue.
        queue: String,
        /// The exchange it is bound to.
        exchange: String,
        /// The routing key (a pattern for topic exchanges).
        routing_key: String,
        /// The binding's arguments: for a headers exchange, the headers to match and
        /// `x-match`. Empty for most bindings.
        arguments: FieldTable,
    },
    /// A binding of exchange `destination` to exchange `source`
    /// ([`Transport::bind_exchange`]).
    ExchangeBinding {
        /// The exchange that routes what `source` routes.
        destination: String,
        /// The exchange it is bound to.
        source: String,
        /// The routing key (a pattern for topic exchanges).
        routing_key: String,
    },
}

impl Declaration {
    /// An exchange declaration.
    #[must_use]
    pub fn exchange(name: impl Into<String>, kind: ExchangeKind, options: ExchangeOptions) -> Self {
        Self::Exchange {
            name: name.into(),
            kind,
            options,
        }
    }

    /// A queue declaration.
    #[must_use]
    pub fn queue(name: impl Into<String>, options: QueueOptions) -> Self {
        Self::Queue {
            name: name.into(),
            options,
        }
    }

    /// A binding of `queue` to `exchange` with `routing_key`.
    #[must_use]
    pub fn binding(
        queue: impl Into<String>,
        exchange: impl Into<String>,
        routing_key: impl Into<String>,
    ) -> Self {
        Self::binding_with_arguments(queue, exchange, routing_key, FieldTable::new())
    }

    /// A binding of `queue` to `exchange` with `routing_key` and binding `arguments`
    /// (what a headers exchange matches).
    ///
    /// ```
    /// use nameko_transport::topology::Declaration;
    /// use nameko_transport::FieldTable;
    ///
    /// let mut arguments = FieldTable::new();
    /// arguments.insert("x-match", "all");
    /// arguments.insert("backoff", 1000_i64);
    /// let binding = Declaration::binding_with_arguments("backoff--1000ms", "backoff", "", arguments);
    /// assert_eq!(
    ///     binding.to_string(),
    ///     "binding of queue `backoff--1000ms` to exchange `backoff` with key `` and arguments {backoff: 1000, x-match: \"all\"}"
    /// );
    /// ```
    #[must_use]
    pub fn binding_with_arguments(
        queue: impl Into<String>,
        exchange: impl Into<String>,
        routing_key: impl Into<String>,
        arguments: FieldTable,
    ) -> Self {
        Self::Binding {
            queue: queue.into(),
            exchange: exchange.into(),
            routing_key: routing_key.into(),
            arguments,
        }
    }

    /// A binding of exchange `destination` to exchange `source` with `routing_key`.
    #[must_use]
    pub fn exchange_binding(
        destination: impl Into<String>,
        source: impl Into<String>,
        routing_key: impl Into<String>,
    ) -> Self {
        Self::ExchangeBinding {
            destination: destination.into(),
            source: source.into(),
            routing_key: routing_key.into(),
        }
    }

    /// Makes this declaration through `transport`. A queue declared with an empty name
    /// gets a name made up by the broker, which is not returned here: declare such a
    /// queue with [`Transport::declare_queue`] to learn it.
    ///
    /// # Errors
    ///
    /// The transport's error, as [`Transport::declare_exchange`],
    /// [`Transport::declare_queue`], [`Transport::bind_queue_with_arguments`] or
    /// [`Transport::bind_exchange`] return it.
    pub async fn declare(&self, transport: &dyn Transport) -> Result<(), TransportError> {
        match self {
            Self::Exchange {
                name,
                kind,
                options,
            } => transport.declare_exchange(name, *kind, *options).await,
            Self::Queue { name, options } => transport
                .declare_queue(name, options.clone())
                .await
                .map(drop),
            Self::Binding {
                queue,
                exchange,
                routing_key,
                arguments,
            } => {
                transport
                    .bind_queue_with_arguments(queue, exchange, routing_key, arguments.clone())
                    .await
            }
            Self::ExchangeBinding {
                destination,
                source,
                routing_key,
            } => {
                transport
                    .bind_exchange(destination, source, routing_key)
                    .await
            }
        }
    }

    /// Whether `other` declares the same exchange or queue (whatever its options), or is
    /// the same binding: what [`Topology::record`] replaces rather than adds.
    fn same_entity(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Exchange { name: a, .. }, Self::Exchange { name: b, .. })
            | (Self::Queue { name: a, .. }, Self::Queue { name: b, .. }) => a == b,
            (Self::Binding { .. }, Self::Binding { .. })
            | (Self::ExchangeBinding { .. }, Self::ExchangeBinding { .. }) => self == other,
            _ => false,
        }
    }

    /// Position in kombu's declaration order: exchanges, then queues, then bindings.
    fn rank(&self) -> u8 {
        match self {
            Self::Exchange { .. } => 0,
            Self::Queue { .. } => 1,
            Self::Binding { .. } | Self::ExchangeBinding { .. } => 2,
        }
    }
}

impl fmt::Display for Declaration {
    /// Names what is declared: ``exchange `x` ``, ``queue `q` ``,
    /// ``binding of queue `q` to exchange `x` with key `k` `` (followed by
    /// `` and arguments {..}`` when it has some), or
    /// ``binding of exchange `d` to exchange `s` with key `k` ``.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exchange { name, .. } => write!(f, "exchange `{name}`"),
            Self::Queue { name, .. } => write!(f, "queue `{name}`"),
            Self::Binding {
                queue,
                exchange,
                routing_key,
                arguments,
            } => {
                write!(
                    f,
                    "binding of queue `{queue}` to exchange `{exchange}` with key `{routing_key}`"
                )?;
                if arguments.is_empty() {
                    return Ok(());
                }
                f.write_str(" and arguments {")?;
                for (i, (key, value)) in arguments.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{key}: {value}")?;
                }
                f.write_str("}")
            }
            Self::ExchangeBinding {
                destination,
                source,
                routing_key,
            } => write!(
                f,
                "binding of exchange `{destination}` to exchange `{source}` with key `{routing_key}`"
            ),
        }
    }
}

/// A declaration that [`Topology::declare`] could not make.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("declaring {declaration}: {source}")]
#[non_exhaustive]
pub struct DeclareError {
    /// What was being declared.
    pub declaration: Box<Declaration>,
    /// Why the transport refused it.
    pub source: TransportError,
}

/// Exchanges, queues and bindings, each once, in the order they were first recorded.
///
/// Recording an exchange or a queue that is already there replaces its kind and options in
/// place; recording a binding that is already there (same ends, key and arguments) does
/// nothing. Forgetting an exchange or a queue forgets the bindings that involve it. [`iter`](Self::iter) and
/// [`declare`](Self::declare) go in kombu's order, which a broker always accepts:
/// every exchange, then every queue, then every binding, each kind in recording order.
///
/// ```
/// use nameko_transport::topology::{DeclareError, Declaration, Topology};
/// use nameko_transport::{ExchangeKind, ExchangeOptions, QueueOptions, Transport};
///
/// /// What an event handler of `payments` for `orders.order_placed` consumes.
/// async fn declare_handler_queue(transport: &dyn Transport) -> Result<(), DeclareError> {
///     let queue = "evt-orders-order_placed--payments.on_order";
///     Topology::new()
///         .with(Declaration::exchange("orders.events", ExchangeKind::Topic, ExchangeOptions::durable()))
///         .with(Declaration::queue(queue, QueueOptions::durable()))
///         .with(Declaration::binding(queue, "orders.events", "order_placed"))
///         .declare(transport)
///         .await
/// }
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Topology {
    declarations: Vec<Declaration>,
}

impl Topology {
    /// An empty topology.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `declaration` and returns the topology, to build one in an expression.
    #[must_use]
    pub fn with(mut self, declaration: Declaration) -> Self {
        self.record(declaration);
        self
    }

    /// Records a declaration: an exchange or queue already recorded under the same name
    /// takes the new kind and options in its place; a binding already recorded stays as it
    /// is; anything else is added at the end.
    pub fn record(&mut self, declaration: Declaration) {
        match self
            .declarations
            .iter_mut()
            .find(|d| d.same_entity(&declaration))
        {
            Some(existing) => *existing = declaration,
            None => self.declarations.push(declaration),
        }
    }

    /// Forgets a queue and every binding of it.
    pub fn forget_queue(&mut self, name: &str) {
        self.declarations.retain(|d| match d {
            Declaration::Queue { name: n, .. } => n != name,
            Declaration::Binding { queue, .. } => queue != name,
            Declaration::Exchange { .. } | Declaration::ExchangeBinding { .. } => true,
        });
    }

    /// Forgets an exchange and every binding to it or from it.
    pub fn forget_exchange(&mut self, name: &str) {
        self.declarations.retain(|d| match d {
            Declaration::Exchange { name: n, .. } => n != name,
            Declaration::Binding { exchange, .. } => exchange != name,
            Declaration::ExchangeBinding {
                destination,
                source,
                ..
            } => destination != name && source != name,
            Declaration::Queue { .. } => true,
        });
    }

    /// The declarations in kombu's order: exchanges, then queues, then bindings, each kind
    /// in the order it was first recorded.
    pub fn iter(&self) -> impl Iterator<Item = &Declaration> + '_ {
        (0..=2).flat_map(move |rank| self.declarations.iter().filter(move |d| d.rank() == rank))
    }

    /// How many declarations are recorded.
    #[must_use]
    pub fn len(&self) -> usize {
        self.declarations.len()
    }

    /// Whether nothing is recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.declarations.is_empty()
    }

    /// Makes every declaration through `transport`, in [`iter`](Self::iter)'s order,
    /// stopping at the first the transport refuses.
    ///
    /// # Errors
    ///
    /// [`DeclareError`]: which declaration failed, and the transport's error.
    pub async fn declare(&self, transport: &dyn Transport) -> Result<(), DeclareError> {
        for declaration in self.iter() {
            declaration
                .declare(transport)
                .await
                .map_err(|source| DeclareError {
                    declaration: Box::new(declaration.clone()),
                    source,
                })?;
        }
        Ok(())
    }
}

impl Extend<Declaration> for Topology {
    fn extend<I: IntoIterator<Item = Declaration>>(&mut self, iter: I) {
        for declaration in iter {
            self.record(declaration);
        }
    }
}

impl FromIterator<Declaration> for Topology {
    fn from_iter<I: IntoIterator<Item = Declaration>>(iter: I) -> Self {
        let mut topology = Self::new();
        topology.extend(iter);
        topology
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use tokio::sync::watch;

    use super::*;
    use crate::{
        Capabilities, ConsumeOptions, Consumer, Message, PublishOptions, PublishOutcome,
        QueueDeclared, TransportStatus,
    };

    /// A transport that logs every declaration and refuses those of one queue.
    #[derive(Debug)]
    struct Recording {
        log: Mutex<Vec<String>>,
        refuse_queue: &'static str,
        status: watch::Sender<TransportStatus>,
    }

    impl Recording {
        fn new(refuse_queue: &'static str) -> Self {
            Self {
                log: Mutex::new(Vec::new()),
                refuse_queue,
                status: watch::channel(TransportStatus::Connected).0,
            }
        }

        fn log(&self) -> Vec<String> {
            self.log.lock().expect("log").clone()
        }

        fn push(&self, entry: String) {
            self.log.lock().expect("log").push(entry);
        }
    }

    #[async_trait]
    impl Transport for Recording {
        fn capabilities(&self) -> Capabilities {
            Capabilities::none("recording")
        }

        fn endpoint(&self) -> String {
            "recording://".to_owned()
        }

        fn status(&self) -> watch::Receiver<TransportStatus> {
            self.status.subscribe()
        }

        async fn declare_exchange(
            &self,
            name: &str,
            kind: ExchangeKind,
            options: ExchangeOptions,
        ) -> Result<(), TransportError> {
            self.push(format!(
                "exchange {name} {kind} durable={}",
                options.durable
            ));
            Ok(())
        }

        async fn delete_exchange(&self, name: &str) -> Result<(), TransportError> {
            self.push(format!("delete exchange {name}"));
            Ok(())
        }

        async fn declare_queue(
            &self,
            name: &str,
            options: QueueOptions,
        ) -> Result<QueueDeclared, TransportError> {
            if name == self.refuse_queue {
                return Err(TransportError::PreconditionFailed(format!(
                    "inequivalent arg 'durable' for queue '{name}'"
                )));
            }
            self.push(format!("queue {name} durable={}", options.durable));
            Ok(QueueDeclared::new(name, 0, 0))
        }

        async fn bind_queue(
            &self,
            queue: &str,
            exchange: &str,
            routing_key: &str,
        ) -> Result<(), TransportError> {
            self.push(format!("bind {queue} {exchange} {routing_key}"));
            Ok(())
        }

        async fn bind_queue_with_arguments(
            &self,
            queue: &str,
            exchange: &str,
            routing_key: &str,
            arguments: FieldTable,
        ) -> Result<(), TransportError> {
            if arguments.is_empty() {
                return self.bind_queue(queue, exchange, routing_key).await;
            }
            let arguments: Vec<String> = arguments
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            self.push(format!(
                "bind {queue} {exchange} {routing_key} {}",
                arguments.join(",")
            ));
            Ok(())
        }

        async fn bind_exchange(
            &self,
            destination: &str,
            source: &str,
            routing_key: &str,
        ) -> Result<(), TransportError> {
            self.push(format!(
                "bind exchange {destination} {source} {routing_key}"
            ));
            Ok(())
        }

        async fn delete_queue(&self, name: &str) -> Result<u32, TransportError> {
            self.push(format!("delete queue {name}"));
            Ok(0)
        }

        async fn publish(
            &self,
            _exchange: &str,
            _routing_key: &str,
            _message: Message,
            _options: PublishOptions,
        ) -> Result<PublishOutcome, TransportError> {
            Err(TransportError::Other("not a publisher".to_owned()))
        }

        async fn consume(
            &self,
            _queue: &str,
            _options: ConsumeOptions,
        ) -> Result<Consumer, TransportError> {
            Err(TransportError::Other("not a consumer".to_owned()))
        }

        async fn close(&self) -> Result<(), TransportError> {
            Ok(())
        }
    }

    fn topic(name: &str) -> Declaration {
        Declaration::exchange(name, ExchangeKind::Topic, ExchangeOptions::durable())
    }

    #[test]
    fn records_each_entity_once_and_replaces_options_in_place() {
        let mut t = Topology::new();
        t.record(Declaration::queue("q1", QueueOptions::default()));
        t.record(topic("x"));
        t.record(Declaration::binding("q1", "x", "a.*"));
        t.record(Declaration::binding("q1", "x", "a.*"));
        t.record(Declaration::queue("q1", QueueOptions::durable()));
        t.record(Declaration::exchange(
            "x",
            ExchangeKind::Direct,
            ExchangeOptions::durable(),
        ));
        t.record(Declaration::binding("q1", "x", "b"));
        assert_eq!(
            t.iter().cloned().collect::<Vec<_>>(),
            [
                Declaration::exchange("x", ExchangeKind::Direct, ExchangeOptions::durable()),
                Declaration::queue("q1", QueueOptions::durable()),
                Declaration::binding("q1", "x", "a.*"),
                Declaration::binding("q1", "x", "b"),
            ]
        );
    }

    #[test]
    fn iterates_in_kombu_order_keeping_recording_order_within_a_kind() {
        let t: Topology = [
            Declaration::binding("q2", "y", "#"),
            Declaration::queue("q2", QueueOptions::default()),
            topic("y"),
            Declaration::binding("q1", "x", "k"),
            Declaration::queue("q1", QueueOptions::default()),
            topic("x"),
        ]
        .into_iter()
        .collect();
        let order: Vec<String> = t.iter().map(ToString::to_string).collect();
        assert_eq!(
            order,
            [
                "exchange `y`",
                "exchange `x`",
                "queue `q2`",
                "queue `q1`",
                "binding of queue `q2` to exchange `y` with key `#`",
                "binding of queue `q1` to exchange `x` with key `k`",
            ]
        );
    }

    #[test]
    fn forgetting_takes_the_dependent_bindings_along() {
        let mut t = Topology::new()
            .with(topic("x"))
            .with(topic("z"))
            .with(Declaration::queue("q1", QueueOptions::durable()))
            .with(Declaration::binding("q1", "x", "a.*"))
            .with(Declaration::binding("q1", "z", "a.*"))
            .with(Declaration::queue("q2", QueueOptions::default()))
            .with(Declaration::binding("q2", "x", "#"));
        t.forget_queue("q2");
        assert_eq!(
            t.iter().cloned().collect::<Vec<_>>(),
            [
                topic("x"),
                topic("z"),
                Declaration::queue("q1", QueueOptions::durable()),
                Declaration::binding("q1", "x", "a.*"),
                Declaration::binding("q1", "z", "a.*"),
            ]
        );
        t.forget_exchange("x");
        assert_eq!(
            t.iter().cloned().collect::<Vec<_>>(),
            [
                topic("z"),
                Declaration::queue("q1", QueueOptions::durable()),
                Declaration::binding("q1", "z", "a.*"),
            ]
        );
        t.forget_exchange("z");
        t.forget_queue("q1");
        assert!(t.is_empty());
        // Forgetting what is not there changes nothing.
        t.forget_queue("q1");
        assert_eq!(t.len(), 0);
    }

    #[tokio::test]
    async fn declares_exchange_then_queue_then_binding() {
        let transport = Recording::new("");
        Topology::new()
            .with(Declaration::binding("rpc-svc", "nameko-rpc", "svc.*"))
            .with(Declaration::queue("rpc-svc", QueueOptions::durable()))
            .with(topic("nameko-rpc"))
            .declare(&transport)
            .await
            .expect("declared");
        assert_eq!(
            transport.log(),
            [
                "exchange nameko-rpc topic durable=true",
                "queue rpc-svc durable=true",
                "bind rpc-svc nameko-rpc svc.*",
            ]
        );
    }

    fn headers_binding(queue: &str, delay: i64) -> Declaration {
        Declaration::binding_with_arguments(
            queue,
            "backoff",
            "",
            FieldTable::new()
                .with("x-match", "all")
                .with("backoff", delay),
        )
    }

    #[test]
    fn bindings_with_arguments_and_of_exchanges_are_entities_of_their_own() {
        let mut t = Topology::new()
            .with(topic("x"))
            .with(Declaration::queue("q", QueueOptions::durable()))
            .with(headers_binding("q", 1000))
            .with(headers_binding("q", 1000))
            .with(headers_binding("q", 2000))
            .with(Declaration::binding("q", "backoff", ""))
            .with(Declaration::exchange_binding("x", "events", "#"))
            .with(Declaration::exchange_binding("x", "events", "#"))
            .with(Declaration::exchange_binding("y", "x", "a.*"));
        // The same ends and key with other arguments are another binding.
        assert_eq!(t.len(), 7);
        assert_eq!(
            headers_binding("q", 1000).to_string(),
            "binding of queue `q` to exchange `backoff` with key `` and arguments \
             {backoff: 1000, x-match: \"all\"}"
        );
        assert_eq!(
            Declaration::exchange_binding("x", "events", "#").to_string(),
            "binding of exchange `x` to exchange `events` with key `#`"
        );
        // An exchange takes the exchange bindings it is either end of along.
        t.forget_exchange("x");
        assert_eq!(
            t.iter().cloned().collect::<Vec<_>>(),
            [
                Declaration::queue("q", QueueOptions::durable()),
                headers_binding("q", 1000),
                headers_binding("q", 2000),
                Declaration::binding("q", "backoff", ""),
            ]
        );
        t.forget_queue("q");
        assert!(t.is_empty());
    }

    #[tokio::test]
    async fn declares_each_binding_through_its_own_call() {
        let transport = Recording::new("");
        Topology::new()
            .with(Declaration::exchange_binding("all", "orders.events", "#"))
            .with(headers_binding("backoff--1000ms", 1000))
            .with(Declaration::binding("rpc-svc", "nameko-rpc", "svc.*"))
            .with(Declaration::queue(
                "backoff--1000ms",
                QueueOptions::durable(),
            ))
            .declare(&transport)
            .await
            .expect("declared");
        assert_eq!(
            transport.log(),
            [
                "queue backoff--1000ms durable=true",
                "bind exchange all orders.events #",
                "bind backoff--1000ms backoff  backoff=1000,x-match=\"all\"",
                "bind rpc-svc nameko-rpc svc.*",
            ]
        );
    }

    #[tokio::test]
    async fn stops_at_the_first_refusal_and_names_it() {
        let transport = Recording::new("q1");
        let error = Topology::new()
            .with(topic("x"))
            .with(Declaration::queue("q1", QueueOptions::default()))
            .with(Declaration::queue("q2", QueueOptions::default()))
            .with(Declaration::binding("q2", "x", "k"))
            .declare(&transport)
            .await
            .expect_err("q1 is refused");
        assert_eq!(
            *error.declaration,
            Declaration::queue("q1", QueueOptions::default())
        );
        assert!(
            matches!(error.source, TransportError::PreconditionFailed(_)),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "declaring queue `q1`: precondition failed: inequivalent arg 'durable' for queue 'q1'"
        );
        assert!(std::error::Error::source(&error).is_some());
        assert_eq!(transport.log(), ["exchange x topic durable=true"]);
    }
}
