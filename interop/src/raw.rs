//! Hand-made RPC requests: what no proxy would send.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use nameko::errors::RpcError;
use nameko::testing::TestCluster;
use nameko::transport::{
    ConsumeOptions, Consumer, Message, Properties, PublishOptions, QueueOptions, Transport,
};
use nameko::wire;
use serde_json::Value;

/// A bare AMQP client on a test's virtual host that publishes RPC requests exactly as
/// given and reads the replies on its own reply queue.
#[derive(Debug)]
pub struct RawRpc {
    transport: Arc<dyn Transport>,
    reply_to: String,
    replies: Consumer,
}

impl RawRpc {
    /// A client with a fresh reply queue bound to `nameko-rpc`.
    ///
    /// # Panics
    ///
    /// If the broker refuses the queue.
    pub async fn connect(cluster: &TestCluster) -> Self {
        let transport = cluster.connect().await;
        let reply_to = uuid::Uuid::new_v4().to_string();
        let queue = format!("rpc.reply-interop_raw-{reply_to}");
        transport
            .declare_queue(&queue, QueueOptions::default().with_auto_delete(true))
            .await
            .expect("declaring the raw reply queue");
        transport
            .bind_queue(&queue, wire::DEFAULT_RPC_EXCHANGE, &reply_to)
            .await
            .expect("binding the raw reply queue");
        let replies = transport
            .consume(&queue, ConsumeOptions::default())
            .await
            .expect("consuming the raw reply queue");
        Self {
            transport,
            reply_to,
            replies,
        }
    }

    /// The connection, for declarations and checks.
    #[must_use]
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    /// What requests must carry as `reply_to` for their replies to come here.
    #[must_use]
    pub fn reply_to(&self) -> &str {
        &self.reply_to
    }

    /// Publishes `body` to `nameko-rpc` with `routing_key` and exactly these properties.
    ///
    /// # Panics
    ///
    /// If the broker refuses it.
    pub async fn send(&self, routing_key: &str, body: impl Into<Vec<u8>>, properties: Properties) {
        self.transport
            .publish(
                wire::DEFAULT_RPC_EXCHANGE,
                routing_key,
                Message::new(body.into(), properties),
                PublishOptions::default(),
            )
            .await
            .expect("publishing a raw request");
    }

    /// The next reply, acked; `None` if none comes within `timeout`.
    ///
    /// # Panics
    ///
    /// If the reply queue fails.
    pub async fn reply(&mut self, timeout: Duration) -> Option<Message> {
        let next = tokio::time::timeout(timeout, self.replies.next())
            .await
            .ok()??;
        let (message, _, acker) = next.expect("reading the raw reply queue").into_parts();
        acker.ack().await.expect("acking a raw reply");
        Some(message)
    }

    /// Sends a JSON request with a reply address and returns its outcome as a Rust
    /// caller sees it.
    ///
    /// # Panics
    ///
    /// If no reply comes within 10 seconds, or the reply is not nameko's.
    pub async fn call(&mut self, routing_key: &str, body: &str) -> Result<Value, RpcError> {
        let properties = Properties::json()
            .with_correlation_id(uuid::Uuid::new_v4().to_string())
            .with_reply_to(self.reply_to.clone());
        self.send(routing_key, body, properties).await;
        let reply = self
            .reply(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("no reply to the raw request to {routing_key}"));
        match wire::decode_reply(&reply.body).expect("a nameko reply") {
            Ok(value) => Ok(value),
            Err(remote) => Err(RpcError::from_remote(remote)),
        }
    }
}
