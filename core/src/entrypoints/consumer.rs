//! What every consuming entrypoint shares: declaring what it consumes, the loop that reads
//! its consumer until the container stops, giving back what was prefetched but not
//! started, and releasing the consumer once every worker has finished. Also the task
//! handle of the entrypoints that consume nothing (timers, `once`).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio::task::JoinHandle;

use crate::extension::{ContainerContext, ExtensionError, Settlement};
use crate::transport::{ConsumeOptions, Consumer, Delivery, TransportError};

/// How long a stopping consumer waits for deliveries its broker had already sent.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What a consuming entrypoint does with each delivery.
///
/// Implemented with a plain `async fn handle(&self, delivery: Delivery) -> bool` (no
/// `#[async_trait]`): the loop runs its future in place, without boxing it per delivery.
pub trait DeliveryHandler: Send + Sync + 'static {
    /// Handles one delivery; `false` when the container is stopping and the delivery went
    /// back to its queue, which ends the loop.
    fn handle(&self, delivery: Delivery) -> impl Future<Output = bool> + Send;
}

/// The consumer of one entrypoint and the task reading it: start consuming a queue and
/// hand every delivery to a [`DeliveryHandler`] until the container stops; on stop, give
/// back what was received but not started; close once every worker settled its
/// delivery. A consumer that ends while the container runs crashes the container.
#[derive(Debug, Default)]
pub struct ConsumerTask {
    task: Mutex<Option<JoinHandle<Option<Consumer>>>>,
    stopped: tokio::sync::Mutex<Option<Consumer>>,
}

impl ConsumerTask {
    /// Starts consuming `queue` and handing each delivery to `handler`, until the
    /// container stops. A consumer that ends while the container runs crashes it, naming
    /// `what` consumed.
    ///
    /// # Errors
    ///
    /// The transport refused the consumer.
    pub async fn start(
        &self,
        ctx: &ContainerContext,
        queue: &str,
        prefetch: u16,
        what: String,
        handler: Arc<impl DeliveryHandler>,
    ) -> Result<(), ExtensionError> {
        let consumer = ctx
            .transport()
            .consume(queue, ConsumeOptions::with_prefetch(prefetch))
            .await
            .map_err(|e| ExtensionError::transport(format!("consuming `{queue}`"), e))?;
        let task = tokio::spawn(run(ctx.clone(), consumer, queue.to_owned(), what, handler));
        *self.task.lock() = Some(task);
        Ok(())
    }

    /// Waits for the loop to end (the container is stopping), keeping the consumer open
    /// so that the running workers can still settle their deliveries.
    pub async fn stop(&self) {
        let task = self.task.lock().take();
        if let Some(task) = task
            && let Ok(consumer) = task.await
        {
            *self.stopped.lock().await = consumer;
        }
    }

    /// Closes the consumer once every worker has finished; anything still unsettled goes
    /// back to the queue.
    pub async fn close(&self) {
        let consumer = self.stopped.lock().await.take();
        if let Some(consumer) = consumer
            && let Err(error) = consumer.close().await
        {
            tracing::debug!(%error, "closing a consumer");
        }
    }

    /// Stops at once: the loop is aborted and the consumer dropped, which gives back
    /// everything unsettled.
    pub async fn kill(&self) {
        let task = self.task.lock().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
        self.stopped.lock().await.take();
    }
}

async fn run(
    ctx: ContainerContext,
    mut consumer: Consumer,
    queue: String,
    what: String,
    handler: Arc<impl DeliveryHandler>,
) -> Option<Consumer> {
    loop {
        let next = tokio::select! {
            biased;
            () = ctx.stopping().cancelled() => break,
            next = consumer.next() => next,
        };
        match next {
            Some(Ok(delivery)) => {
                if !handler.handle(delivery).await {
                    break;
                }
            }
            Some(Err(error)) => {
                if !ctx.stopping().is_cancelled() {
                    ctx.crash(format!("{what} lost its consumer of `{queue}`: {error}"));
                }
                return Some(consumer);
            }
            None => {
                if !ctx.stopping().is_cancelled() {
                    ctx.crash(format!("the consumer of `{queue}` ({what}) ended"));
                }
                return Some(consumer);
            }
        }
    }
    let requeued = give_back_unstarted(&mut consumer, &queue).await;
    ctx.observers()
        .message_settled(&queue, Settlement::Requeued, requeued);
    Some(consumer)
}

/// Cancels a consumer and requeues what it had received but not started; returns how
/// many it requeued.
async fn give_back_unstarted(consumer: &mut Consumer, queue: &str) -> u64 {
    if let Err(error) = consumer.cancel().await {
        tracing::debug!(%error, queue, "cancelling consumer");
    }
    let drain = async {
        let mut requeued = 0_u64;
        while let Some(Ok(delivery)) = consumer.next().await {
            if delivery.nack(true).await.is_ok() {
                requeued += 1;
            }
        }
        requeued
    };
    match tokio::time::timeout(DRAIN_TIMEOUT, drain).await {
        Ok(0) => 0,
        Ok(requeued) => {
            tracing::info!(queue, requeued, "requeued messages that had not started");
            requeued
        }
        Err(_) => {
            tracing::warn!(
                queue,
                "consumer did not end after cancel; closing it requeues the rest"
            );
            0
        }
    }
}

/// Logs a delivery that could not be settled (its channel is gone; the broker redelivers
/// it).
pub fn settle(result: Result<(), TransportError>) {
    if let Err(error) = result {
        tracing::warn!(%error, "could not settle a message; the broker will redeliver it");
    }
}

/// The task of an entrypoint that consumes nothing (a timer, `once`).
#[derive(Debug, Default)]
pub struct BackgroundTask {
    task: Mutex<Option<JoinHandle<()>>>,
}

impl BackgroundTask {
    /// Runs `future` as the entrypoint's task.
    pub fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        *self.task.lock() = Some(tokio::spawn(future));
    }

    /// Waits for the task to end (it watches the container's stop signal).
    pub async fn finish(&self) {
        let task = self.task.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Aborts the task.
    pub async fn abort(&self) {
        let task = self.task.lock().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }
}
