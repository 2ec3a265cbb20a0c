//! [`AmqpTransport`]: the [`Transport`] trait on RabbitMQ.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use lapin::options::{ExchangeDeclareOptions, ExchangeDeleteOptions, QueueDeleteOptions};
use lapin::types::FieldTable as AmqpTable;
use nameko_transport::topology::{Declaration, Topology};
use nameko_transport::{
    Capabilities, ConsumeOptions, Consumer, ExchangeKind, ExchangeOptions, FieldTable, Message,
    PublishOptions, PublishOutcome, QueueDeclared, QueueOptions, Transport, TransportError,
    TransportStatus,
};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, watch};

use crate::connection::Session;
use crate::consumer::{AmqpConsumer, Attachment, ConsumerSpec, Consumers};
use crate::convert::{properties_to_amqp, short};
use crate::declare::{self, Declared};
use crate::error::from_lapin;
use crate::options::{AmqpOptions, Startup};
use crate::publish::Outgoing;
use crate::recovery;
use crate::uri::AmqpUri;

/// The RabbitMQ transport: a [`Transport`] on one AMQP connection, through lapin.
///
/// Cheap to clone; clones share the connection. It keeps:
///
/// - one management channel for declarations, which run one at a time and are replaced
///   when the broker closes the channel over a refused declaration;
/// - one channel in confirm mode shared by every confirmed publish that is not mandatory;
///   they pipeline, each awaiting only its own confirm;
/// - a second channel in confirm mode for mandatory publishes, which pipeline too; a
///   returned message is given to the publish it is a copy of (lapin may hand it to
///   another publish's confirm), and a mandatory publish waits for the broker even when
///   `confirm` is off, since only the confirm tells that no return is coming;
/// - one channel without confirms for publishes that are neither confirmed nor mandatory;
/// - one channel per consumer, with the consumer's prefetch window on it.
///
/// With a URI listing several brokers (the nodes of a cluster, see [`AmqpUri`]) it
/// connects to the first that answers, and reconnects to any of them.
///
/// When the connection is lost (broker restart, `rabbitmqctl close_connection`, missed
/// heartbeats, a cluster node stopped) the status turns to
/// [`TransportStatus::Reconnecting`] and the transport reconnects with the
/// [`ReconnectPolicy`](crate::ReconnectPolicy)'s backoff, each attempt trying every broker
/// of the URI, the one lost last. It then
/// declares again every exchange, queue and binding it declared (bindings with arguments
/// and exchange-to-exchange bindings included), leaving out what it deleted (its
/// [`Topology`], in kombu's order: exchanges, queues, bindings), starts
/// every consumer again with its options, and the
/// [`Consumer`] streams go on yielding deliveries. Meanwhile every operation fails at once
/// with [`TransportError::Disconnected`]; publishes that were awaiting a confirm fail with
/// it too. Deliveries taken before the loss cannot be settled any more (the broker
/// redelivers them). Queues the broker named itself (declared with an empty name) are not
/// declared again.
///
/// A consumer whose own channel the broker closes while the connection stays up (its
/// queue deleted, a delivery settled twice) ends with the broker's error; it is not
/// re-created.
///
/// ```no_run
/// use nameko_amqp::AmqpTransport;
/// use nameko_transport::{Message, Properties, PublishOptions, Transport};
///
/// # async fn run() -> Result<(), nameko_transport::TransportError> {
/// let transport = AmqpTransport::connect("amqp://guest:guest@localhost:5672/%2f").await?;
/// let message = Message::new(r#"{"args": [], "kwargs": {}}"#, Properties::json());
/// let outcome = transport
///     .publish("nameko-rpc", "greeting.hello", message, PublishOptions::default().with_mandatory(true))
///     .await?;
/// println!("{outcome:?}");
/// transport.close().await
/// # }
/// ```
#[derive(Clone)]
pub struct AmqpTransport {
    inner: Arc<Inner>,
}

/// What the transport's handles, its supervisor and its consumers share.
pub(crate) struct Inner {
    pub(crate) uri: AmqpUri,
    pub(crate) options: AmqpOptions,
    pub(crate) status: watch::Sender<TransportStatus>,
    pub(crate) session: RwLock<Option<Arc<Session>>>,
    pub(crate) topology: Mutex<Topology>,
    pub(crate) known_exchanges: RwLock<HashSet<String>>,
    pub(crate) consumers: Arc<Consumers>,
    pub(crate) signals: Arc<Signals>,
}

/// Wakes the supervisor: to look at the connection, or to stop.
#[derive(Debug, Default)]
pub(crate) struct Signals {
    pub(crate) wake: Notify,
    closing: AtomicBool,
}

impl Signals {
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }
}

impl AmqpTransport {
    /// Connects with the default [`AmqpOptions`].
    ///
    /// # Errors
    ///
    /// [`TransportError::InvalidArgument`] for a malformed URI; [`TransportError::Connect`]
    /// or [`TransportError::Timeout`] when the broker cannot be reached;
    /// [`TransportError::AccessRefused`] when it refuses the login. No error text contains
    /// the password.
    pub async fn connect(uri: &str) -> Result<Self, TransportError> {
        Self::connect_with(uri, AmqpOptions::default()).await
    }

    /// Connects with these options.
    ///
    /// # Errors
    ///
    /// As [`AmqpTransport::connect`].
    pub async fn connect_with(uri: &str, options: AmqpOptions) -> Result<Self, TransportError> {
        let uri: AmqpUri = uri
            .parse()
            .map_err(|e: crate::InvalidUri| TransportError::InvalidArgument(e.to_string()))?;
        Self::connect_uri(uri, options).await
    }

    /// Connects to an already parsed URI.
    ///
    /// # Errors
    ///
    /// As [`AmqpTransport::connect`].
    pub async fn connect_uri(uri: AmqpUri, options: AmqpOptions) -> Result<Self, TransportError> {
        let (session, events) = first_session(&uri, &options).await?;
        let session = Arc::new(session);
        let (status, _) = watch::channel(TransportStatus::Connected);
        tracing::info!(endpoint = %uri, broker = %uri.brokers()[session.broker()], "connected to the broker");
        let inner = Arc::new(Inner {
            uri,
            options,
            status,
            session: RwLock::new(Some(Arc::clone(&session))),
            topology: Mutex::new(Topology::default()),
            known_exchanges: RwLock::new(HashSet::new()),
            consumers: Arc::new(Consumers::default()),
            signals: Arc::new(Signals::default()),
        });
        tokio::spawn(recovery::supervise(
            Arc::downgrade(&inner),
            Arc::clone(&inner.signals),
            session,
            events,
        ));
        Ok(Self { inner })
    }

    /// The broker's URI, with the password redacted.
    #[must_use]
    pub fn uri(&self) -> &AmqpUri {
        &self.inner.uri
    }

    /// The broker of the URI's list the transport is connected to now; `None` while it is
    /// reconnecting or closed.
    #[must_use]
    pub fn connected_broker(&self) -> Option<&crate::BrokerAddress> {
        let index = self
            .inner
            .session
            .read()
            .as_ref()
            .filter(|session| session.is_alive())
            .map(|session| session.broker())?;
        self.inner.uri.brokers().get(index)
    }

    /// The live session, or why there is none.
    fn session(&self) -> Result<Arc<Session>, TransportError> {
        if self.inner.signals.is_closing() {
            return Err(TransportError::Closed);
        }
        match self.inner.session.read().as_ref() {
            Some(session) if session.is_alive() => Ok(Arc::clone(session)),
            Some(_) => {
                self.inner.signals.wake.notify_one();
                Err(self.disconnected())
            }
            None => Err(self.disconnected()),
        }
    }

    fn disconnected(&self) -> TransportError {
        match &*self.inner.status.borrow() {
            TransportStatus::Closed => TransportError::Closed,
            TransportStatus::Reconnecting { reason, .. } => TransportError::Disconnected(format!(
                "not connected to {} ({reason}); reconnecting",
                self.inner.uri
            )),
            _ => TransportError::Disconnected(format!("not connected to {}", self.inner.uri)),
        }
    }

    /// Lets the supervisor know when an operation failed because the connection went.
    fn failed(&self, session: &Session, error: TransportError) -> TransportError {
        if error.is_connection_error() || !session.is_alive() {
            self.inner.signals.wake.notify_one();
            if !session.is_alive() {
                return TransportError::Disconnected(format!(
                    "the connection to {} was lost: {error}",
                    self.inner.uri
                ));
            }
        }
        error
    }

    /// Makes a declaration on the management channel (declarations run one at a time);
    /// what the broker declared.
    async fn declare(&self, declaration: &Declaration) -> Result<Declared, TransportError> {
        let session = self.session()?;
        let result = {
            let channel = session.management().await?;
            declare::declare(&channel, declaration).await
        };
        result.map_err(|e| self.failed(&session, e))
    }

    /// Makes a declaration and records it in the topology, to be declared again after a
    /// reconnection through the same code path.
    async fn declare_recorded(&self, declaration: Declaration) -> Result<Declared, TransportError> {
        let declared = self.declare(&declaration).await?;
        self.inner.topology.lock().record(declaration);
        Ok(declared)
    }

    /// Makes sure `exchange` exists before a message goes on a shared channel: a publish
    /// to a missing exchange makes RabbitMQ close the channel, failing the publishes that
    /// share it. Checked once per exchange (a passive declaration), then remembered.
    async fn ensure_exchange(
        &self,
        session: &Session,
        exchange: &str,
    ) -> Result<(), TransportError> {
        if exchange.is_empty()
            || exchange.starts_with("amq.")
            || self.inner.known_exchanges.read().contains(exchange)
        {
            return Ok(());
        }
        let name = short(exchange, "exchange name")?;
        let result = {
            let channel = session.management().await?;
            channel
                .exchange_declare(
                    name,
                    lapin::ExchangeKind::Direct,
                    ExchangeDeclareOptions {
                        passive: true,
                        ..ExchangeDeclareOptions::default()
                    },
                    AmqpTable::default(),
                )
                .await
        };
        result.map_err(|e| self.failed(session, from_lapin(&e)))?;
        self.inner
            .known_exchanges
            .write()
            .insert(exchange.to_owned());
        Ok(())
    }

    /// Refuses properties RabbitMQ would answer by closing the publish channel, so that
    /// one bad message cannot fail the others in flight with it.
    fn check_properties(&self, message: &Message) -> Result<(), TransportError> {
        let props = &message.properties;
        if let Some(user_id) = &props.user_id
            && user_id != self.inner.uri.username()
        {
            return Err(TransportError::InvalidArgument(format!(
                "user_id `{user_id}` is not the connection's user; RabbitMQ refuses it"
            )));
        }
        if let Some(expiration) = &props.expiration
            && expiration.parse::<u32>().is_err()
        {
            return Err(TransportError::InvalidArgument(format!(
                "expiration `{expiration}` is not a number of milliseconds"
            )));
        }
        Ok(())
    }
}

/// What the AMQP transport guarantees: publisher confirms, mandatory returns, exclusive
/// queues, `x-expires` (on the broker's clock, not tokio's), durability across broker
/// restarts and ordering per queue. It cannot tell when the broker is idle and offers no
/// fault injection.
#[must_use]
pub fn capabilities() -> Capabilities {
    let mut caps = Capabilities::none("amqp");
    caps.publisher_confirms = true;
    caps.mandatory_returns = true;
    caps.delivery_policies = true;
    caps.exclusive_queues = true;
    caps.queue_expiry = true;
    caps.follows_tokio_clock = false;
    caps.durable_across_restart = true;
    caps.ordered_per_queue = true;
    caps
}

/// Opens the first connection, retrying when the options say to wait for the broker.
async fn first_session(
    uri: &AmqpUri,
    options: &AmqpOptions,
) -> Result<(Session, crate::connection::Events), TransportError> {
    let mut delays = options.reconnect.backoff();
    let mut fallback = crate::ReconnectPolicy::default().backoff();
    let mut attempt = 0_u32;
    loop {
        attempt += 1;
        let order = crate::connection::broker_order(uri.brokers().len(), uri.failover(), None);
        match Session::open(uri, options, 1, &order).await {
            Ok(opened) => return Ok(opened),
            Err(error) => {
                let retry = options.startup == Startup::WaitForBroker
                    && !matches!(error, TransportError::AccessRefused(_));
                if !retry {
                    return Err(error);
                }
                // A policy that never reconnects still waits for the broker here, at
                // the default pace.
                let (own, default) = (delays.next(), fallback.next());
                let delay = own.or(default).unwrap_or_default();
                tracing::warn!(endpoint = %uri, attempt, %error, ?delay, "broker not reachable yet; retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[async_trait]
impl Transport for AmqpTransport {
    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    fn endpoint(&self) -> String {
        self.inner.uri.redacted()
    }

    fn status(&self) -> watch::Receiver<TransportStatus> {
        self.inner.status.subscribe()
    }

    async fn declare_exchange(
        &self,
        name: &str,
        kind: ExchangeKind,
        options: ExchangeOptions,
    ) -> Result<(), TransportError> {
        let declaration = Declaration::exchange(name, kind, options);
        if options.passive {
            self.declare(&declaration).await?;
        } else {
            self.declare_recorded(declaration).await?;
        }
        self.inner.known_exchanges.write().insert(name.to_owned());
        Ok(())
    }

    async fn delete_exchange(&self, name: &str) -> Result<(), TransportError> {
        let session = self.session()?;
        let name_short = short(name, "exchange name")?;
        self.inner.topology.lock().forget_exchange(name);
        self.inner.known_exchanges.write().remove(name);
        let result = {
            let channel = session.management().await?;
            channel
                .exchange_delete(name_short, ExchangeDeleteOptions::default())
                .await
        };
        match result.map_err(|e| self.failed(&session, from_lapin(&e))) {
            Ok(()) | Err(TransportError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn declare_queue(
        &self,
        name: &str,
        options: QueueOptions,
    ) -> Result<QueueDeclared, TransportError> {
        let replayable = !options.passive && !name.is_empty();
        let declaration = Declaration::queue(name, options);
        let declared = if replayable {
            self.declare_recorded(declaration).await?
        } else {
            // Passive declarations change nothing; a server-named queue gets a new name
            // on every declaration: neither is declared again after a reconnection.
            self.declare(&declaration).await?
        };
        let queue = declared.ok_or_else(|| {
            TransportError::Other(format!("the broker did not declare queue `{name}`"))
        })?;
        Ok(QueueDeclared::new(
            queue.name().as_str(),
            queue.message_count(),
            queue.consumer_count(),
        ))
    }

    async fn bind_queue(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
    ) -> Result<(), TransportError> {
        self.declare_recorded(Declaration::binding(queue, exchange, routing_key))
            .await
            .map(drop)
    }

    async fn bind_queue_with_arguments(
        &self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
        arguments: FieldTable,
    ) -> Result<(), TransportError> {
        self.declare_recorded(Declaration::binding_with_arguments(
            queue,
            exchange,
            routing_key,
            arguments,
        ))
        .await
        .map(drop)
    }

    async fn bind_exchange(
        &self,
        destination: &str,
        source: &str,
        routing_key: &str,
    ) -> Result<(), TransportError> {
        self.declare_recorded(Declaration::exchange_binding(
            destination,
            source,
            routing_key,
        ))
        .await
        .map(drop)
    }

    async fn delete_queue(&self, name: &str) -> Result<u32, TransportError> {
        let session = self.session()?;
        let name_short = short(name, "queue name")?;
        let result = {
            let channel = session.management().await?;
            channel
                .queue_delete(name_short, QueueDeleteOptions::default())
                .await
        };
        match result.map_err(|e| self.failed(&session, from_lapin(&e))) {
            Ok(count) => {
                self.inner.topology.lock().forget_queue(name);
                Ok(count)
            }
            Err(TransportError::NotFound(_)) => {
                self.inner.topology.lock().forget_queue(name);
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        message: Message,
        options: PublishOptions,
    ) -> Result<PublishOutcome, TransportError> {
        let session = self.session()?;
        self.check_properties(&message)?;
        let outgoing = Outgoing {
            exchange,
            exchange_name: short(exchange, "exchange name")?,
            routing_key: short(routing_key, "routing key")?,
            message: &message,
            properties: properties_to_amqp(&message.properties)?,
        };
        self.ensure_exchange(&session, exchange).await?;
        let result = session
            .publisher()
            .publish(&session, outgoing, options)
            .await;
        if let Err(TransportError::NotFound(_)) = &result {
            self.inner.known_exchanges.write().remove(exchange);
        }
        result.map_err(|e| self.failed(&session, e))
    }

    async fn consume(
        &self,
        queue: &str,
        options: ConsumeOptions,
    ) -> Result<Consumer, TransportError> {
        let session = self.session()?;
        let tag = options
            .consumer_tag
            .clone()
            .unwrap_or_else(|| format!("nameko-rs.{}", uuid::Uuid::new_v4().simple()));
        let spec = ConsumerSpec {
            queue: queue.to_owned(),
            options,
            tag,
        };
        // Registered before it starts, so that a reconnection in between re-creates it.
        let (id, reattach) = self.inner.consumers.register(spec.clone());
        match Attachment::start(&session, &spec).await {
            Ok(attachment) => Ok(Consumer::new(Box::new(AmqpConsumer::new(
                id,
                &spec,
                Arc::clone(&self.inner.consumers),
                attachment,
                reattach,
            )))),
            Err(TransportError::AccessRefused(text)) if text.contains("in exclusive use") => {
                // RabbitMQ answers 403 for a queue held by an exclusive consumer; the
                // Transport contract calls that ResourceLocked, as for exclusive queues.
                self.inner.consumers.deregister(id);
                Err(TransportError::ResourceLocked(text))
            }
            Err(error) => {
                self.inner.consumers.deregister(id);
                Err(self.failed(&session, error))
            }
        }
    }

    async fn close(&self) -> Result<(), TransportError> {
        if self.inner.signals.is_closing() {
            return Ok(());
        }
        self.inner.signals.close();
        self.inner.consumers.close_all();
        let session = self.inner.session.write().take();
        self.inner.status.send_replace(TransportStatus::Closed);
        tracing::info!(endpoint = %self.inner.uri, "closed the connection to the broker");
        match session {
            Some(session) => session.close().await,
            None => Ok(()),
        }
    }
}

impl fmt::Debug for AmqpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpTransport")
            .field("endpoint", &self.inner.uri.redacted())
            .field("status", &*self.inner.status.borrow())
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: stop the supervisor; lapin closes the connection once
        // its last channel handle is dropped.
        self.signals.close();
        self.consumers.close_all();
    }
}
