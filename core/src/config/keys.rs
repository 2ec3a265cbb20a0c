//! The names of the keys nameko-rs reads, spelled exactly as nameko spells them.

/// `AMQP_URI`: the broker to connect to.
pub const AMQP_URI: &str = "AMQP_URI";
/// `rpc_exchange` (lowercase, as in nameko): name of the RPC exchange.
pub const RPC_EXCHANGE: &str = "rpc_exchange";
/// `max_workers` (lowercase): size of a container's worker pool.
pub const MAX_WORKERS: &str = "max_workers";
/// `PREFETCH_COUNT`: prefetch window of each consumer.
pub const PREFETCH_COUNT: &str = "PREFETCH_COUNT";
/// `parent_calls_tracked` (lowercase): how many ancestors a call id stack keeps.
pub const PARENT_CALLS_TRACKED: &str = "parent_calls_tracked";
/// `HEARTBEAT`: AMQP heartbeat interval in seconds.
pub const HEARTBEAT: &str = "HEARTBEAT";
/// `serializer` (lowercase): the serializer for outgoing messages; only `json` exists.
pub const SERIALIZER: &str = "serializer";
/// `AUTO_DELETE_EVENT_EXCHANGES`: declare `<service>.events` with auto-delete.
pub const AUTO_DELETE_EVENT_EXCHANGES: &str = "AUTO_DELETE_EVENT_EXCHANGES";
/// `DECLARE_EVENT_EXCHANGES`: declare event exchanges at all (only a literal `false`
/// turns it off).
pub const DECLARE_EVENT_EXCHANGES: &str = "DECLARE_EVENT_EXCHANGES";
/// `RPC_TIMEOUT` (a nameko-rs extra): default timeout of every RPC call, in seconds.
pub const RPC_TIMEOUT: &str = "RPC_TIMEOUT";
/// `RPC_RETRY_POLICY` (a nameko-rs extra): retries of publishes that fail on the
/// transport.
pub const RPC_RETRY_POLICY: &str = "RPC_RETRY_POLICY";
/// `LOGGING`: log configuration (a level name, or a table with a `level` key).
pub const LOGGING: &str = "LOGGING";
/// `AMQP_SSL`: TLS for RabbitMQ, as nameko passes it to kombu: `true`, or a mapping of
/// options.
pub const AMQP_SSL: &str = "AMQP_SSL";
/// `LOGIN_METHOD`: the SASL mechanism (only `PLAIN` and `AMQPLAIN` are supported).
pub const LOGIN_METHOD: &str = "LOGIN_METHOD";
/// `AMQP_STARTUP` (a nameko-rs extra): `fail_fast` or `wait` for the broker at start-up.
pub const AMQP_STARTUP: &str = "AMQP_STARTUP";
/// `AMQP_STARTUP_TIMEOUT` (a nameko-rs extra): with `AMQP_STARTUP: wait`, the longest
/// wait for the broker, in seconds.
pub const AMQP_STARTUP_TIMEOUT: &str = "AMQP_STARTUP_TIMEOUT";
/// `MAX_MESSAGE_SIZE` (a nameko-rs extra): largest message body accepted, in bytes.
pub const MAX_MESSAGE_SIZE: &str = "MAX_MESSAGE_SIZE";
/// `SHUTDOWN_TIMEOUT` (a nameko-rs extra): seconds a graceful stop waits for workers.
pub const SHUTDOWN_TIMEOUT: &str = "SHUTDOWN_TIMEOUT";
/// `REQUEUE_DELAY` (a nameko-rs extra): seconds an event or message handled with
/// `requeue_on_error` waits before it is requeued again after a redelivery failed too.
pub const REQUEUE_DELAY: &str = "REQUEUE_DELAY";

/// `QUEUE_TYPE` (a nameko-rs extra): `classic` (the default) or `quorum` queues, for
/// every service, one service or one entrypoint.
pub const QUEUE_TYPE: &str = "QUEUE_TYPE";

/// The broker nameko uses when none is configured.
pub const DEFAULT_AMQP_URI: &str = "amqp://guest:guest@localhost:5672/";
