//! The broker side of a benchmark: a virtual host of its own (a
//! [`TestVhost`](nameko::testing::TestVhost), so nothing it declares outlives it or meets
//! other users' queues), and watching queues for consumers.

use std::time::{Duration, Instant};

use nameko::amqp::{AmqpOptions, AmqpTransport};
use nameko::transport::{QueueOptions, Transport as _, TransportError};

use crate::error::{BenchError, Result};

/// A connection that watches queues for consumers: when a service is ready, and when it
/// has gone.
#[derive(Debug)]
pub struct Probe {
    transport: AmqpTransport,
}

impl Probe {
    /// Connects to `uri`.
    ///
    /// # Errors
    ///
    /// If the broker cannot be reached.
    pub async fn connect(uri: &str) -> Result<Self> {
        let options = AmqpOptions::new()
            .connection_name("nameko-bench probe")
            .connect_timeout(Duration::from_secs(3));
        Ok(Self {
            transport: AmqpTransport::connect_with(uri, options).await?,
        })
    }

    /// Consumers on `queue`; zero when it does not exist.
    ///
    /// # Errors
    ///
    /// If the broker fails otherwise.
    pub async fn consumers(&self, queue: &str) -> Result<u32> {
        match self
            .transport
            .declare_queue(queue, QueueOptions::passive())
            .await
        {
            Ok(declared) => Ok(declared.consumer_count),
            Err(TransportError::NotFound(_)) => Ok(0),
            Err(error) => Err(error.into()),
        }
    }

    /// Waits until `queue` has a consumer, polling every millisecond; returns when.
    ///
    /// # Errors
    ///
    /// If none comes within `timeout`.
    pub async fn wait_for_consumer(&self, queue: &str, timeout: Duration) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.consumers(queue).await? > 0 {
                return Ok(Instant::now());
            }
            if Instant::now() > deadline {
                return Err(BenchError::new(format!(
                    "no consumer on {queue} after {timeout:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Waits until `queue` has no consumer left.
    ///
    /// # Errors
    ///
    /// If one is still there after `timeout`.
    pub async fn wait_for_no_consumer(&self, queue: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while self.consumers(queue).await? > 0 {
            if Instant::now() > deadline {
                return Err(BenchError::new(format!("{queue} still has a consumer")));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Closes the connection.
    pub async fn close(&self) {
        let _ = self.transport.close().await;
    }
}
