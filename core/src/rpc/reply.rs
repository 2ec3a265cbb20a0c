//! The reply queue: one per container (shared by all its proxies) and one per standalone
//! proxy, with replies matched to calls by correlation id.
//!
//! A reply queue that cannot be consumed any more (deleted, or lost with the cluster node
//! it lived on: the broker answers 404 `NOT_FOUND`) is replaced: the calls waiting on it
//! fail at once with [`RpcError::RepliesLost`], and the listener declares a fresh queue
//! (a new name, declared as nameko declares reply queues) for the calls that follow.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{OnceCell, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::waiting::{CorrelationId, Waiting};
use crate::errors::RpcError;
use crate::transport::{
    ConsumeOptions, Consumer, ExchangeKind, ExchangeOptions, Message, QueueOptions, Transport,
    TransportError, TransportStatus,
};
use crate::wire;

/// Where a waiting call's reply (or the error that lost it) is sent.
type Waiter = oneshot::Sender<Result<Message, RpcError>>;

/// The first wait after a failed attempt to declare a fresh reply queue.
const MOVE_BACKOFF_START: Duration = Duration::from_millis(100);
/// The longest wait between attempts to declare a fresh reply queue.
const MOVE_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// How long forgetting a lost reply queue (deleting it, when its node answers) may take.
const FORGET_TIMEOUT: Duration = Duration::from_secs(5);

/// One reply queue: its name and the key requests carry as `reply_to`.
#[derive(Debug)]
pub(crate) struct ReplyQueue {
    name: String,
    pub(crate) routing_key: String,
}

impl ReplyQueue {
    /// `rpc.reply-<owner>-<uuid>`, bound with the bare uuid.
    fn fresh(owner: &str) -> Self {
        let routing_key = uuid::Uuid::new_v4().to_string();
        Self {
            name: wire::reply_queue(owner, &routing_key),
            routing_key,
        }
    }
}

/// The reply queue in use and the calls waiting on it, under one lock, so that a call is
/// never registered on a queue the listener has just given up.
#[derive(Debug)]
struct Calls {
    queue: Arc<ReplyQueue>,
    /// The queue could not be consumed any more and its replacement is not ready yet:
    /// new calls wait for it.
    moving: bool,
    waiting: Waiting<Waiter>,
}

/// What the listener, its consumer task and its outage watcher share.
#[derive(Debug)]
struct Shared {
    transport: Arc<dyn Transport>,
    exchange: String,
    owner: String,
    max_size: usize,
    calls: Mutex<Calls>,
    /// Bumped whenever a fresh reply queue is ready.
    moved: watch::Sender<u64>,
}

/// A reply queue and the calls waiting on it.
///
/// The queue is `rpc.reply-<owner>-<uuid>`, durable, not exclusive, removed by the broker
/// 5 minutes after its last consumer leaves (`x-expires` 300000, as nameko declares it),
/// and bound to the RPC exchange with the bare uuid, which requests carry as `reply_to`.
///
/// When the queue cannot be consumed any more (deleted, or lost with the RabbitMQ cluster
/// node it lived on, so that the consumer cannot be re-created after a reconnection), the
/// calls waiting on it fail at once with [`RpcError::RepliesLost`] and the listener moves
/// to a fresh queue, with a new uuid, declared and bound the same way; calls made
/// meanwhile wait for it (within their own timeout) and go out with its `reply_to`.
pub struct ReplyListener {
    shared: Arc<Shared>,
    started: OnceCell<()>,
    task: Mutex<Option<JoinHandle<()>>>,
    watcher: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for ReplyListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let calls = self.shared.calls.lock();
        f.debug_struct("ReplyListener")
            .field("queue", &calls.queue.name)
            .field("pending", &calls.waiting.len())
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
        let (moved, _) = watch::channel(0);
        Self {
            shared: Arc::new(Shared {
                transport,
                exchange: exchange.into(),
                owner: owner.to_owned(),
                max_size,
                calls: Mutex::new(Calls {
                    queue: Arc::new(ReplyQueue::fresh(owner)),
                    moving: false,
                    waiting: Waiting::default(),
                }),
                moved,
            }),
            started: OnceCell::new(),
            task: Mutex::new(None),
            watcher: Mutex::new(None),
        }
    }

    /// The reply queue's name (the newest, when the listener moved to a fresh queue).
    #[must_use]
    pub fn queue(&self) -> String {
        self.shared.calls.lock().queue.name.clone()
    }

    /// The routing key requests carry as `reply_to` (the newest queue's).
    #[must_use]
    pub fn reply_to(&self) -> String {
        self.shared.calls.lock().queue.routing_key.clone()
    }

    /// Declares and binds the reply queue and starts consuming it. Idempotent.
    ///
    /// # Errors
    ///
    /// If the broker refuses a declaration or the consumer.
    pub async fn start(&self) -> Result<(), TransportError> {
        self.started
            .get_or_try_init(|| async {
                let queue = Arc::clone(&self.shared.calls.lock().queue);
                let consumer = self.shared.declare(&queue).await?;
                let task = tokio::spawn(listen(Arc::clone(&self.shared), consumer));
                *self.task.lock() = Some(task);
                *self.watcher.lock() = Some(tokio::spawn(watch_outages(
                    self.shared.transport.status(),
                    Arc::clone(&self.shared),
                )));
                Ok(())
            })
            .await
            .copied()
    }

    /// Registers a call: returns the `reply_to` its request must carry, and the receiver
    /// its reply (or the error that lost it) will arrive on.
    ///
    /// While the listener moves to a fresh reply queue this waits until the queue is
    /// ready; callers bound the wait by the call's deadline.
    pub async fn register(
        &self,
        correlation_id: String,
    ) -> (String, oneshot::Receiver<Result<Message, RpcError>>) {
        let (queue, rx) = self
            .register_id(CorrelationId::from_string(correlation_id))
            .await;
        (queue.routing_key.clone(), rx)
    }

    /// [`ReplyListener::register`], returning the reply queue (whose routing key is the
    /// `reply_to`).
    pub(crate) async fn register_id(
        &self,
        correlation_id: CorrelationId,
    ) -> (
        Arc<ReplyQueue>,
        oneshot::Receiver<Result<Message, RpcError>>,
    ) {
        let mut moved = self.shared.moved.subscribe();
        loop {
            {
                let mut calls = self.shared.calls.lock();
                if !calls.moving {
                    let (tx, rx) = oneshot::channel();
                    calls.waiting.insert(correlation_id, tx);
                    return (Arc::clone(&calls.queue), rx);
                }
            }
            if moved.changed().await.is_err() {
                // Unreachable while `self` holds the sender; wait for the caller's
                // deadline rather than spin.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Forgets a call (timed out, or abandoned); a late reply is dropped.
    pub fn forget(&self, correlation_id: &str) {
        self.shared.calls.lock().waiting.remove(correlation_id);
    }

    fn forget_id(&self, correlation_id: &CorrelationId) {
        self.shared.calls.lock().waiting.remove_id(correlation_id);
    }

    /// Number of calls waiting for a reply.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.shared.calls.lock().waiting.len()
    }

    /// Correlation ids of the calls waiting for a reply.
    #[must_use]
    pub fn pending_ids(&self) -> Vec<String> {
        self.shared.calls.lock().waiting.ids()
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
        self.shared.calls.lock().waiting.clear();
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

impl Shared {
    /// Declares the RPC exchange and `queue`, binds it, and starts consuming it.
    async fn declare(&self, queue: &ReplyQueue) -> Result<Consumer, TransportError> {
        let t = &self.transport;
        t.declare_exchange(
            &self.exchange,
            ExchangeKind::Topic,
            ExchangeOptions::durable(),
        )
        .await?;
        t.declare_queue(
            &queue.name,
            QueueOptions::durable().with_expires(wire::RPC_REPLY_QUEUE_TTL),
        )
        .await?;
        t.bind_queue(&queue.name, &self.exchange, &queue.routing_key)
            .await?;
        t.consume(&queue.name, ConsumeOptions::default()).await
    }

    /// Hands each reply to the call waiting for it, until the consumer ends; the
    /// consumer's error, if it failed.
    async fn deliver(&self, consumer: &mut Consumer, queue: &str) -> Option<TransportError> {
        while let Some(next) = consumer.next().await {
            let delivery = match next {
                Ok(delivery) => delivery,
                Err(error) => return Some(error),
            };
            let (message, _, acker) = delivery.into_parts();
            if let Err(error) = acker.ack().await {
                tracing::debug!(%error, "acking a reply");
            }
            let Some(cid) = message.properties.correlation_id.as_deref() else {
                tracing::warn!(queue, "dropping a reply without correlation id");
                continue;
            };
            let waiter = self.calls.lock().waiting.remove(cid);
            match waiter {
                Some(tx) if message.body.len() > self.max_size => {
                    let size = message.body.len();
                    let max_size = self.max_size;
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
                None => tracing::debug!(correlation_id = cid, "dropping a reply nobody waits for"),
            }
        }
        None
    }

    /// Gives up the reply queue in use: new calls wait for its replacement, and the calls
    /// waiting on it fail with [`RpcError::RepliesLost`]. Returns the queue.
    fn give_up_queue(&self, error: &TransportError) -> Arc<ReplyQueue> {
        let (queue, lost) = {
            let mut calls = self.calls.lock();
            calls.moving = true;
            let lost: Vec<(String, Waiter)> = calls.waiting.drain();
            (Arc::clone(&calls.queue), lost)
        };
        tracing::error!(
            queue = %queue.name,
            %error,
            lost = lost.len(),
            "the reply queue cannot be consumed any more; replies to calls in flight are lost, \
             moving to a fresh reply queue"
        );
        fail_lost(lost);
        queue
    }

    /// Declares a fresh reply queue and starts consuming it, retrying with a backoff
    /// (100 ms doubling to 2 s) until it works; then new calls use it. `None` when the
    /// transport is closed.
    async fn move_to_fresh_queue(&self) -> Option<Consumer> {
        let fresh = ReplyQueue::fresh(&self.owner);
        let mut backoff = MOVE_BACKOFF_START;
        let mut status = self.transport.status();
        loop {
            // Declarations fail at once while the transport reconnects: wait for it
            // (bounded by the backoff, so a missed change costs one wait at most).
            let connected = {
                let current = status.borrow_and_update().clone();
                match current {
                    TransportStatus::Closed => return None,
                    TransportStatus::Connected => true,
                    _ => false,
                }
            };
            if !connected {
                let _ = tokio::time::timeout(backoff, status.changed()).await;
                continue;
            }
            match self.declare(&fresh).await {
                Ok(consumer) => {
                    let fresh = Arc::new(fresh);
                    {
                        let mut calls = self.calls.lock();
                        calls.queue = Arc::clone(&fresh);
                        calls.moving = false;
                    }
                    self.moved.send_modify(|n| *n += 1);
                    tracing::info!(queue = %fresh.name, "moved to a fresh reply queue");
                    return Some(consumer);
                }
                Err(TransportError::Closed) => return None,
                Err(error) => {
                    tracing::warn!(queue = %fresh.name, %error, ?backoff, "declaring a fresh reply queue failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MOVE_BACKOFF_MAX);
                }
            }
        }
    }

    /// Forgets a reply queue that was given up: deletes it (the broker answers 404 for a
    /// queue lost with its node, which the transport takes as gone), so that the
    /// transport does not declare it again after later reconnections.
    async fn forget_queue(&self, queue: &ReplyQueue) {
        match tokio::time::timeout(FORGET_TIMEOUT, self.transport.delete_queue(&queue.name)).await {
            Ok(Ok(_)) => tracing::debug!(queue = %queue.name, "forgot the lost reply queue"),
            Ok(Err(error)) => {
                tracing::debug!(queue = %queue.name, %error, "could not delete the lost reply queue");
            }
            Err(_) => {
                tracing::debug!(queue = %queue.name, "deleting the lost reply queue timed out")
            }
        }
    }
}

/// Whether a consumer's error means its queue cannot be consumed again: deleted, or
/// unavailable with the cluster node it lives on (RabbitMQ answers 404 `NOT_FOUND`, "home
/// node ... is down or inaccessible").
fn queue_lost(error: &TransportError) -> bool {
    matches!(error, TransportError::NotFound(_))
        || error.to_string().contains("down or inaccessible")
}

fn fail_lost(lost: Vec<(String, Waiter)>) {
    if lost.is_empty() {
        return;
    }
    let ids: Vec<String> = lost.iter().map(|(id, _)| id.clone()).collect();
    for (_, tx) in lost {
        let _ = tx.send(Err(RpcError::RepliesLost(ids.clone())));
    }
}

/// The consumer task: delivers replies; when the queue is lost, moves to a fresh one.
async fn listen(shared: Arc<Shared>, mut consumer: Consumer) {
    loop {
        let queue = Arc::clone(&shared.calls.lock().queue);
        let failure = shared.deliver(&mut consumer, &queue.name).await;
        drop(consumer);
        match failure {
            Some(error) if queue_lost(&error) => {
                let lost = shared.give_up_queue(&error);
                let Some(next) = shared.move_to_fresh_queue().await else {
                    shared.calls.lock().waiting.clear();
                    return;
                };
                consumer = next;
                shared.forget_queue(&lost).await;
            }
            failure => {
                // The consumer is gone: fail every call still waiting, with the
                // consumer's error if it failed.
                let waiting = shared.calls.lock().waiting.drain();
                if let Some(error) = failure {
                    tracing::error!(%error, queue = %queue.name, "reply consumer failed");
                    for (_, tx) in waiting {
                        let _ = tx.send(Err(RpcError::Transport(error.clone())));
                    }
                }
                return;
            }
        }
    }
}

/// Watches the transport for outages long enough for the broker to have deleted the reply
/// queue (`x-expires`: it had no consumer for that long): the replies due to the calls
/// still waiting are lost, so those calls fail at once with [`RpcError::RepliesLost`]
/// (nameko 3's `ReplyQueueExpiredWithPendingReplies`) instead of waiting for their
/// timeout. The transport has redeclared the queue by then, so later calls work.
async fn watch_outages(mut status: watch::Receiver<TransportStatus>, shared: Arc<Shared>) {
    let ttl = Duration::from_millis(u64::from(wire::RPC_REPLY_QUEUE_TTL));
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
                        let (queue, lost) = {
                            let mut calls = shared.calls.lock();
                            let lost = calls.waiting.drain();
                            (calls.queue.name.clone(), lost)
                        };
                        if !lost.is_empty() {
                            tracing::error!(
                                queue,
                                ?outage,
                                lost = lost.len(),
                                "the reply queue expired during a broker outage; replies to calls in flight are lost"
                            );
                        }
                        fail_lost(lost);
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
        correlation_id: CorrelationId,
        rx: oneshot::Receiver<Result<Message, RpcError>>,
        deadline: Instant,
        timeout: Duration,
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
        timeout: Duration,
    ) -> Self {
        Self::waiting_id(
            listener,
            CorrelationId::from_string(correlation_id),
            rx,
            deadline,
            timeout,
        )
    }

    /// [`PendingReply::waiting`] for a registration made with
    /// [`ReplyListener::register_id`].
    pub(crate) fn waiting_id(
        listener: Arc<ReplyListener>,
        correlation_id: CorrelationId,
        rx: oneshot::Receiver<Result<Message, RpcError>>,
        deadline: Instant,
        timeout: Duration,
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
            State::Waiting { correlation_id, .. } => Some(correlation_id.as_str()),
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
                let timeout = *timeout;
                let received = tokio::time::timeout_at(*deadline, rx).await;
                if received.is_ok() {
                    // The listener let go of the call when it answered or failed it:
                    // nothing to forget.
                    self.state = State::Ready(None);
                }
                let message = match received {
                    Ok(Ok(Ok(message))) => message,
                    Ok(Ok(Err(error))) => return Err(error),
                    Ok(Err(_)) => return Err(RpcError::Stopped),
                    Err(_) => return Err(RpcError::Timeout(timeout)),
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
            listener.forget_id(correlation_id);
        }
    }
}
