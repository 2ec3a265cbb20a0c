//! Helpers shared by the broker's tests.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use futures_util::StreamExt;
use nameko_transport::{
    Consumer, Delivery, DeliveryMode, Message, Properties, PublishOptions, PublishOutcome,
    Transport, TransportError,
};

/// A persistent message whose body and message id are `id`.
pub fn msg(id: &str) -> Message {
    Message::new(
        id.as_bytes().to_vec(),
        Properties::default()
            .with_message_id(id)
            .with_delivery_mode(DeliveryMode::Persistent),
    )
}

/// A transient message whose body and message id are `id`.
pub fn transient(id: &str) -> Message {
    Message::new(
        id.as_bytes().to_vec(),
        Properties::default()
            .with_message_id(id)
            .with_delivery_mode(DeliveryMode::Transient),
    )
}

/// Publishes `msg(id)` with default options.
pub async fn publish(
    conn: &impl Transport,
    exchange: &str,
    key: &str,
    id: &str,
) -> Result<PublishOutcome, TransportError> {
    conn.publish(exchange, key, msg(id), PublishOptions::default())
        .await
}

/// The next item of a consumer, within a second of tokio time.
pub async fn next(consumer: &mut Consumer) -> Option<Result<Delivery, TransportError>> {
    tokio::time::timeout(Duration::from_secs(1), consumer.next())
        .await
        .expect("the consumer yielded nothing within a second")
}

/// The next delivery, which must arrive.
pub async fn recv(consumer: &mut Consumer) -> Delivery {
    match next(consumer).await {
        Some(Ok(d)) => d,
        other => panic!("expected a delivery, got {other:?}"),
    }
}

/// Whether something arrives within 50 ms of tokio time.
pub async fn quiet(consumer: &mut Consumer) -> bool {
    tokio::time::timeout(Duration::from_millis(50), consumer.next())
        .await
        .is_err()
}

/// The message id of a delivery.
pub fn id(d: &Delivery) -> &str {
    d.properties().message_id.as_deref().unwrap_or("")
}

/// Lets spawned tasks (recovery) run.
pub async fn yield_a_few() {
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
}
