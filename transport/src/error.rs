//! Errors of the transport layer.

/// An error from a [`Transport`](crate::Transport).
///
/// The variants follow the AMQP reply codes a broker answers with, plus the failures of
/// the connection itself, so that the framework can tell a refused declaration from a
/// lost connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// A declaration conflicts with an existing exchange or queue of the same name
    /// (AMQP 406 `PRECONDITION_FAILED`).
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// An exchange or queue does not exist (AMQP 404 `NOT_FOUND`).
    #[error("not found: {0}")]
    NotFound(String),
    /// An exclusive queue belongs to another connection (AMQP 405 `RESOURCE_LOCKED`).
    #[error("resource locked: {0}")]
    ResourceLocked(String),
    /// The broker refused access (AMQP 403 `ACCESS_REFUSED`).
    #[error("access refused: {0}")]
    AccessRefused(String),
    /// The connection to the broker could not be opened.
    #[error("cannot connect to broker: {0}")]
    Connect(String),
    /// The connection or channel the operation needed is gone. Deliveries taken on it can
    /// no longer be settled; the broker redelivers them.
    #[error("disconnected: {0}")]
    Disconnected(String),
    /// The transport was closed by its owner.
    #[error("transport closed")]
    Closed,
    /// An argument the broker would refuse, caught before sending.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The operation did not complete in time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A fault injected by a test through the in-memory broker.
    #[error("injected fault: {0}")]
    Injected(String),
    /// Any other broker or client error.
    #[error("{0}")]
    Other(String),
}

impl TransportError {
    /// Whether the error means the connection (or channel) is gone, so that retrying
    /// after a reconnect may succeed.
    #[must_use]
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            Self::Connect(_) | Self::Disconnected(_) | Self::Timeout(_) | Self::Injected(_)
        )
    }
}
