//! What a Rust handler received, for the test to read back.

use std::sync::Arc;
use std::time::Duration;

use nameko::dependency::{Dependency, ValueProvider};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::Notify;

/// A list of records shared by a test and the workers of its Rust services: a service
/// declares a `records: Recorder` field, and
/// [`Interop::start_rust_recording`](crate::Interop::start_rust_recording) hands every
/// worker the test's recorder.
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    records: Mutex<Vec<Value>>,
    changed: Notify,
}

impl Recorder {
    /// A new, empty recorder.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a record.
    pub fn record(&self, record: Value) {
        self.inner.records.lock().push(record);
        self.inner.changed.notify_waiters();
    }

    /// The records so far.
    #[must_use]
    pub fn records(&self) -> Vec<Value> {
        self.inner.records.lock().clone()
    }

    /// The records, once there are at least `count` (or when `timeout` has passed).
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.inner.changed.notified();
            let records = self.records();
            if records.len() >= count {
                return records;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.records();
            }
        }
    }
}

impl Dependency for Recorder {
    type Provider = ValueProvider<Self>;

    /// A recorder nobody reads; tests replace it with theirs.
    fn provider(_field: &'static str) -> Self::Provider {
        ValueProvider::new(Self::new())
    }
}
