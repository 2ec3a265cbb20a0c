//! An event handler, and a dependency written for it.

use std::sync::{Arc, Mutex};

use nameko::dependency::{Dependency, DependencyProvider, ProviderError};
use nameko::prelude::*;

/// The notifications a service instance has sent, shared by all its workers: a
/// dependency with its own provider, the way users write theirs.
#[derive(Debug, Clone, Default)]
pub struct Outbox {
    sent: Arc<Mutex<Vec<Value>>>,
}

impl Outbox {
    /// Records a notification.
    pub fn push(&self, notification: Value) {
        self.sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(notification);
    }

    /// The notifications, in the order they were sent.
    #[must_use]
    pub fn all(&self) -> Vec<Value> {
        self.sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Provides an [`Outbox`] that lives as long as its container.
#[derive(Debug, Default)]
pub struct OutboxProvider {
    outbox: Outbox,
}

impl DependencyProvider for OutboxProvider {
    type Output = Outbox;

    async fn get_dependency(&self, _worker: &WorkerContext) -> Result<Outbox, ProviderError> {
        Ok(self.outbox.clone())
    }
}

impl Dependency for Outbox {
    type Provider = OutboxProvider;

    fn provider(_field: &'static str) -> OutboxProvider {
        OutboxProvider::default()
    }
}

/// `notification_service`: notifies customers of placed orders.
#[derive(Debug, Dependencies)]
pub struct NotificationService {
    outbox: Outbox,
}

#[service(name = "notification_service")]
impl NotificationService {
    /// Handles `order_service`'s `order_placed` events.
    #[event_handler("order_service", "order_placed")]
    pub async fn on_order_placed(&self, order: Value) {
        tracing::info!(order_id = %order["order_id"], "notifying customer");
        self.outbox.push(order);
    }

    /// The `order_placed` events handled, in order.
    #[rpc]
    pub async fn sent(&self) -> Vec<Value> {
        self.outbox.all()
    }
}
