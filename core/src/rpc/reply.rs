//! The reply queue: one per container (shared by all its proxies) and one per standalone
//! proxy, with replies matched to calls by correlation id.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use futures_util::StreamExt;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{OnceCell, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::errors::RpcError;
use crate::transport::{
    ConsumeOptions, ExchangeKind, ExchangeOptions, Message, QueueOptions, Transport,
    TransportError, TransportStatus,
};
use crate::wire;

/// A reply queue and the calls waiting on it.
///
/// The queue is `rpc.reply-<owner>-<uuid>`, durable, not exclusive, removed by the broker
/// 5 minutes after its last consumer leaves (`x-expires` 300000, as nameko declares it),
/// and bound to the RPC exchange with the bare uuid, which requests carry as `reply_to`.
pub struct ReplyListener {
    transport: Arc<dyn Transport>,
    exchange: String,
    queue: String,
    routing_key: String,
    max_size: usize,
    pending: Arc<Mutex<HashMap<String, oneshot::Sender<Result<Message, RpcError>>>>>,
    started: OnceCell<()>,
    task: Mutex<Option<JoinHandle<()>>>,
    watcher: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for ReplyListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyListener")
            .field("queue", &self.queue)
            .field("pending", &self.pending.lock().len())
            .finish_non_exhaustive()
    }
}

impl ReplyListener {
    /// A listener for replies to calls made by `owner` (a service name, or
    /// `standalone_rpc_proxy`), with a fresh uuid.
    #[must_use]
    pub fn new(
        transport: Arc<dyn Transport>,
        exchange: impl Into<String>,
        owner: &str,
        max_size: usize,
    ) -> Self {
        let routing_key = uuid::Uuid::new_v4().to_string();
        Self {
            transport,
            exchange: exchange.into(),
            queue: wire::reply_queue(owner, &routing_key),
            routing_key,
            max_size,
            pending: Arc::default(),
            started: OnceCell::new(),
            task: Mutex::new(None),
            watcher: Mutex::new(None),
        }
    }

    /// The reply queue's name.
    #[must_use]
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// The routing key requests carry as `reply_to`.
    #[must_use]
    pub fn reply_to(&self) -> &str {
        &self.routing_key
    }

    /// Declares and binds the reply queue and starts consuming it. Idempotent.
    ///
    /// # Errors
    ///
    /// If the broker refuses a declaration or the consumer.
    pub async fn start(&self) -> Result<(), TransportError> {
        self.started
            .get_or_try_init(|| async {
                let t = &self.transport;
                t.declare_exchange(
                    &self.exchange,
                    ExchangeKind::Topic,
                    ExchangeOptions::durable(),
                )
                .await?;
                t.declare_queue(
                    &self.queue,
                    QueueOptions::durable().with_expires(wire::RPC_REPLY_QUEUE_TTL),
                )
                .await?;
                t.bind_queue(&self.queue, &self.exchange, &self.routing_key)
                    .await?;
                let consumer = t.consume(&self.queue, ConsumeOptions::default()).await?;
                let pending = self.pending.clone();
                let queue = self.queue.clone();
                let max_size = self.max_size;
                let task = tokio::spawn(async move {
                    let mut consumer = consumer;
                    let mut failure = None;
                    while let Some(next) = consumer.next().await {
                        let delivery = match next {
                            Ok(delivery) => delivery,
                            Err(error) => {
                                tracing::error!(%error, queue, "reply consumer failed");
                                failure = Some(error);
                                break;
                            }
                        };
                        let (message, _, acker) = delivery.into_parts();
                        if let Err(error) = acker.ack().await {
                            tracing::debug!(%error, "acking a reply");
                        }
                        let Some(cid) = message.properties.correlation_id.as_deref() else {
                            tracing::warn!(queue, "dropping a reply without correlation id");
                            continue;
                        };
                        let waiter = pending.lock().remove(cid);
                        match waiter {
                            Some(tx) if message.body.len() > max_size => {
                                let size = message.body.len();
                                tracing::warn!(
                                    queue,
                                    correlation_id = cid,
                                    size,
                                    "dropping an oversized reply"
                                );
                                let _ = tx.send(Err(RpcError::InvalidReply(format!(
                                    "the reply of {size} bytes is larger than MAX_MESSAGE_SIZE \
                                     ({max_size} bytes)"
                                ))));
                            }
                            Some(tx) => {
                                let _ = tx.send(Ok(message));
                            }
                            None => tracing::debug!(
                                correlation_id = cid,
                                "dropping a reply nobody waits for"
                            ),
                        }
                    }
                    // The consumer is gone: fail every call still waiting, with the
                    // consumer's error if it failed.
                    let waiting: Vec<_> = pending.lock().drain().collect();
                    if let Some(error) = failure {
                        for (_, tx) in waiting {
                            let _ = tx.send(Err(RpcError::Transport(error.clone())));
                        }
                    }
                });
                *self.task.lock() = Some(task);
                *self.watcher.lock() = Some(tokio::spawn(watch_outages(
                    t.status(),
                    self.pending.clone(),
                    self.queue.clone(),
                )));
                Ok(())
            })
            .await
            .copied()
    }

    /// Registers a call; its reply will arrive on the returned receiver (or the error
    /// that lost it).
    pub fn register(&self, correlation_id: String) -> oneshot::Receiver<Result<Message, RpcError>> {
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(correlation_id, tx);
        rx
    }

    /// Forgets a call (timed out, or abandoned); a late reply is dropped.
    pub fn forget(&self, correlation_id: &str) {
        self.pending.lock().remove(correlation_id);
    }

    /// Number of calls waiting for a reply.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending.lock().len()
    }

    /// Correlation ids of the calls waiting for a reply.
    #[must_use]
    pub fn pending_ids(&self) -> Vec<String> {
        self.pending.lock().keys().cloned().collect()
    }

    /// Stops consuming; calls still waiting fail with [`RpcError::Stopped`]. The queue is
    /// left for the broker to expire, as nameko does.
    pub async fn stop(&self) {
        if let Some(watcher) = self.watcher.lock().take() {
            watcher.abort();
        }
        let task = self.task.lock().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        self.pending.lock().clear();
    }
}

impl Drop for ReplyListener {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().take() {
            task.abort();
        }
        if let Some(watcher) = self.watcher.lock().take() {
            watcher.abort();
        }
    }
}

/// Watches the transport for outages long enough for the broker to have deleted the reply
/// queue (`x-expires`: it had no consumer for that long): the replies due to the calls
/// still waiting are lost, so those calls fail at once with [`RpcError::RepliesLost`]
/// (nameko 3's `ReplyQueueExpiredWithPendingReplies`) instead of waiting for their
/// timeout. The transport has redeclared the queue by then, so later calls work.
async fn watch_outages(
    mut status: tokio::sync::watch::Receiver<TransportStatus>,
    pending: Arc<Mutex<HashMap<String, oneshot::Sender<Result<Message, RpcError>>>>>,
    queue: String,
) {
    let ttl = std::time::Duration::from_millis(u64::from(wire::RPC_REPLY_QUEUE_TTL));
    let mut down_since: Option<Instant> = None;
    loop {
        let current = status.borrow_and_update().clone();
        match current {
            TransportStatus::Reconnecting { .. } => {
                down_since.get_or_insert_with(Instant::now);
            }
            TransportStatus::Connected => {
                if let Some(since) = down_since.take() {
                    let outage = since.elapsed();
                    if outage >= ttl {
                        let lost: Vec<_> = pending.lock().drain().collect();
                        if !lost.is_empty() {
                            let ids: Vec<String> = lost.iter().map(|(id, _)| id.clone()).collect();
                            tracing::error!(
                                queue,
                                ?outage,
                                lost = ids.len(),
                                "the reply queue expired during a broker outage; replies to calls in flight are lost"
                            );
                            for (_, tx) in lost {
                                let _ = tx.send(Err(RpcError::RepliesLost(ids.clone())));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        if status.changed().await.is_err() {
            return;
        }
    }
}

/// A call waiting for its reply.
#[derive(Debug)]
pub struct PendingReply {
    state: State,
}

#[derive(Debug)]
enum State {
    Waiting {
        listener: Arc<ReplyListener>,
        correlation_id: String,
        rx: oneshot::Receiver<Result<Message, RpcError>>,
        deadline: Instant,
        timeout: std::time::Duration,
    },
    Ready(Option<Result<Value, RpcError>>),
    /// Answered `null` by a test double with nothing scripted: the message says so when
    /// `null` does not fit the result type.
    Unscripted(String),
}

impl PendingReply {
    /// A call whose reply will arrive through `listener`.
    #[must_use]
    pub fn waiting(
        listener: Arc<ReplyListener>,
        correlation_id: String,
        rx: oneshot::Receiver<Result<Message, RpcError>>,
        deadline: Instant,
        timeout: std::time::Duration,
    ) -> Self {
        Self {
            state: State::Waiting {
                listener,
                correlation_id,
                rx,
                deadline,
                timeout,
            },
        }
    }

    /// A call whose outcome is already known (used by test doubles).
    #[must_use]
    pub fn ready(outcome: Result<Value, RpcError>) -> Self {
        Self {
            state: State::Ready(Some(outcome)),
        }
    }

    /// A call a test double answers with `null` because nothing was scripted for it:
    /// callers expecting a type that `null` does not fit (`f64`, a struct) get
    /// [`RpcError::InvalidReply`] with `message` rather than a deserialization error.
    #[must_use]
    pub fn unscripted(message: impl Into<String>) -> Self {
        Self {
            state: State::Unscripted(message.into()),
        }
    }

    /// The correlation id of the request, when it went over a transport.
    #[must_use]
    pub fn correlation_id(&self) -> Option<&str> {
        match &self.state {
            State::Waiting { correlation_id, .. } => Some(correlation_id),
            State::Ready(_) | State::Unscripted(_) => None,
        }
    }

    /// Waits for the reply, until the call's deadline.
    ///
    /// # Errors
    ///
    /// [`RpcError::Timeout`], the remote error, or an invalid reply.
    pub async fn wait(mut self) -> Result<Value, RpcError> {
        match &mut self.state {
            State::Ready(outcome) => outcome.take().unwrap_or(Err(RpcError::Stopped)),
            State::Unscripted(_) => Ok(Value::Null),
            State::Waiting { .. } => self.wait_for().await,
        }
    }

    /// Waits for the reply, until the call's deadline, and converts its result to `R`
    /// (read straight from the body, see [`wire::decode_reply_as`]).
    ///
    /// # Errors
    ///
    /// [`RpcError::Timeout`], the remote error, or [`RpcError::InvalidReply`] for an
    /// invalid reply or a result that does not fit `R`.
    pub async fn wait_for<R: DeserializeOwned>(mut self) -> Result<R, RpcError> {
        match &mut self.state {
            State::Ready(outcome) => {
                let value = outcome.take().unwrap_or(Err(RpcError::Stopped))?;
                wire::result_as(&value).map_err(RpcError::InvalidReply)
            }
            State::Unscripted(message) => {
                wire::result_as(&Value::Null).map_err(|_| RpcError::InvalidReply(message.clone()))
            }
            State::Waiting {
                rx,
                deadline,
                timeout,
                ..
            } => {
                let message = match tokio::time::timeout_at(*deadline, rx).await {
                    Ok(Ok(Ok(message))) => message,
                    Ok(Ok(Err(error))) => return Err(error),
                    Ok(Err(_)) => return Err(RpcError::Stopped),
                    Err(_) => return Err(RpcError::Timeout(*timeout)),
                };
                match wire::decode_reply_as(&message.body) {
                    Ok(Ok(result)) => Ok(result),
                    Ok(Err(remote)) => Err(RpcError::from_remote(remote)),
                    Err(problem) => Err(RpcError::InvalidReply(problem)),
                }
            }
        }
    }
}

impl Drop for PendingReply {
    fn drop(&mut self) {
        if let State::Waiting {
            listener,
            correlation_id,
            ..
        } = &self.state
        {
            listener.forget(correlation_id);
        }
    }
}
