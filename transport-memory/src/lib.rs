//! nameko-memory: a deterministic in-process AMQP broker for nameko-rs.
//!
//! [`MemoryBroker`] models the part of AMQP 0-9-1 that nameko relies on, below the
//! [`Transport`](nameko_transport::Transport) trait, so nothing above it can tell it
//! from RabbitMQ. Many [`MemoryTransport`] connections share one broker, so a whole
//! cluster of services runs in one test process, without a broker to install.
//!
//! # What it models
//!
//! - **Exchanges**: the default exchange (`""`, routing to the queue named by the key),
//!   direct, fanout, and topic with RabbitMQ's exact `*`/`#` semantics
//!   ([`topic`]). A queue bound by several matching patterns gets one copy. Publishing
//!   to a missing exchange fails with `NotFound`. `amq.direct`, `amq.fanout` and
//!   `amq.topic` exist from the start.
//! - **Queues**: durable, exclusive (owned by the declaring connection; others get
//!   `ResourceLocked`; deleted when it closes), auto-delete (deleted when its last
//!   consumer goes, once it has had one), `x-expires` (deleted after that long unused:
//!   no consumer, no declaration; checked lazily against tokio's clock at every broker
//!   operation, so a paused clock drives it), server-named (`amq.gen-…`) for an empty
//!   name. A conflicting redeclaration fails with `PreconditionFailed` naming what
//!   differs, in RabbitMQ's words.
//! - **Delivery**: FIFO per queue, round-robin between competing consumers, a prefetch
//!   window per consumer (0 = unlimited) counting unsettled deliveries, delivery tags per
//!   consumer from 1. `ack` removes; `nack`/`reject` with requeue put the message back at
//!   the head of its queue marked redelivered; without requeue they drop it.
//! - **Publishing**: `mandatory` and unroutable gives `Returned` (312 `NO_ROUTE`);
//!   `confirm` gives `Confirmed`, otherwise `Sent`. Messages wait in a queue until
//!   someone consumes them.
//! - **Delivery policies**, as RabbitMQ's classic queues have them: per-message
//!   `expiration` and `x-message-ttl` (a message expires at the head of its queue, when a
//!   broker timer on tokio's clock wakes, or when it would be delivered: a paused clock
//!   drives it); dead-lettering of expired, rejected (`nack`/`reject` without requeue)
//!   and dropped messages to `x-dead-letter-exchange` / `-routing-key`, with the
//!   `x-death` header (count per queue and reason, newest first, `original-expiration`),
//!   `x-first-death-*`, and RabbitMQ's cycle check; `x-max-length` with `x-overflow`
//!   `drop-head` (dead-letters the oldest), `reject-publish` (a confirmed publish is
//!   `Nacked`) and `reject-publish-dlx`; `x-max-priority` (higher priorities first,
//!   capped at the maximum, FIFO within one); headers exchanges with binding arguments
//!   (`x-match` `all`/`any`); exchange-to-exchange bindings.
//!
//! # Consumers: cancel, close, drop
//!
//! [`cancel`](nameko_transport::Consumer::cancel) stops new deliveries; deliveries
//! already handed out can still be settled, and the stream yields what it had buffered,
//! then ends. [`close`](nameko_transport::Consumer::close), or dropping the
//! consumer, also requeues every unsettled delivery (marked redelivered); settling one
//! of them afterwards fails with `Disconnected`.
//!
//! # Connections and recovery
//!
//! [`Transport::close`](nameko_transport::Transport::close) (or dropping the last
//! clone of a [`MemoryTransport`]) is final: consumers end, unsettled deliveries are
//! requeued, exclusive queues are deleted, and later calls fail with `Closed`.
//!
//! When the *broker* drops a connection ([`MemoryBroker::drop_connection`],
//! [`MemoryBroker::restart`]), the connection behaves as the RabbitMQ backend does: its
//! status goes `Reconnecting`, calls fail with `Disconnected` meanwhile, and a task
//! reconnects — at once when the broker is available, otherwise retrying with a backoff
//! of 100 ms doubling to 2 s on tokio time. On reconnection it redeclares every exchange,
//! queue and binding it declared, minus what it deleted (its
//! [`Topology`](nameko_transport::topology::Topology), in kombu's order: exchanges, queues,
//! bindings; a server-named queue keeps its name) and resumes every consumer with its
//! original options, so the
//! [`Consumer`](nameko_transport::Consumer) streams the framework holds just keep
//! yielding. Deliveries handed out before the drop were requeued by the broker; settling
//! them fails with `Disconnected`, and any still buffered in a stream are discarded
//! unseen. With [`ConnectOptions::with_recovery(false)`](ConnectOptions::with_recovery)
//! the connection is lost instead: its status goes `Closed`, consumer streams end with a
//! `Disconnected` error, and calls fail with `Disconnected`.
//!
//! # Determinism
//!
//! Everything happens synchronously under one lock, inside the call that causes it:
//! publishing routes and hands the message to a consumer's stream at once; settling and
//! consuming deliver what became possible. There are no background timers and no
//! wall-clock sleeps; the only task is the reconnection one, which sleeps on tokio time.
//! [`MemoryBroker::run_until_idle`] waits (bounded) until nothing is in flight.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use futures_util::StreamExt;
//! use nameko_transport::{
//!     ConsumeOptions, ExchangeKind, ExchangeOptions, Message, Properties, PublishOptions,
//!     QueueOptions, Transport,
//! };
//! use nameko_memory::MemoryBroker;
//!
//! let broker = MemoryBroker::new();
//! let conn = broker.connect();
//! conn.declare_exchange("nameko-rpc", ExchangeKind::Topic, ExchangeOptions::durable()).await?;
//! conn.declare_queue("rpc-calc", QueueOptions::durable()).await?;
//! conn.bind_queue("rpc-calc", "nameko-rpc", "calc.*").await?;
//! let mut requests = conn.consume("rpc-calc", ConsumeOptions::with_prefetch(10)).await?;
//!
//! let body = r#"{"args": [1, 2], "kwargs": {}}"#;
//! conn.publish("nameko-rpc", "calc.add", Message::new(body, Properties::json()),
//!     PublishOptions::default().with_mandatory(true)).await?;
//!
//! let delivery = requests.next().await.expect("a delivery")?;
//! assert_eq!(delivery.routing_key(), "calc.add");
//! delivery.ack().await?;
//! broker.run_until_idle().await.expect("nothing left in flight");
//! # Ok::<(), nameko_transport::TransportError>(())
//! # }).unwrap();
//! ```

mod broker;
mod connection;
mod consumer;
mod exchange;
mod faults;
mod idle;
mod ids;
mod inspect;
mod mailbox;
mod policy;
mod queue;
mod recovery;
mod recycle;
mod state;
pub mod topic;
mod ttl;

use nameko_transport::Capabilities;

pub use broker::{MemoryBroker, MemoryBrokerBuilder};
pub use connection::{ConnectOptions, MemoryTransport};
pub use idle::NotIdle;
pub use ids::ConnectionId;
pub use inspect::{BindingInfo, ConnectionInfo, ExchangeInfo, PublishLog, Published, QueueInfo};

/// What the in-memory backend guarantees: everything.
pub(crate) fn capabilities() -> Capabilities {
    let mut caps = Capabilities::none("memory");
    caps.publisher_confirms = true;
    caps.mandatory_returns = true;
    caps.exclusive_queues = true;
    caps.queue_expiry = true;
    caps.follows_tokio_clock = true;
    caps.durable_across_restart = true;
    caps.ordered_per_queue = true;
    caps.idle_detection = true;
    caps.fault_injection = true;
    caps.delivery_policies = true;
    caps
}
