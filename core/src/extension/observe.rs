//! Observers: what a container tells about the work its extensions do, for metrics,
//! logs and traces that need more than the dependency hooks see.
//!
//! The dependency hooks see each worker of the service whose field they fill; an
//! [`Observer`] sees every worker of its container without a field
//! ([`Observer::worker_finished`]), every RPC call the service makes through its
//! proxies ([`Observer::call_finished`]), and every message its entrypoints did not
//! simply ack ([`Observer::message_settled`]: requeued, rejected, retried later,
//! dead-lettered). An extension registers one with
//! [`ContainerContext::observers`](super::ContainerContext::observers) during its
//! `setup`. With no observer registered, telling costs one atomic load.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! use nameko_core::extension::{CallOutcome, Observer, OutgoingCall, Observers};
//!
//! /// Counts the calls that timed out.
//! #[derive(Debug, Default)]
//! struct Timeouts(AtomicU64);
//!
//! impl Observer for Timeouts {
//!     fn call_finished(&self, call: &OutgoingCall<'_>) {
//!         if call.outcome == CallOutcome::Timeout {
//!             self.0.fetch_add(1, Ordering::Relaxed);
//!         }
//!     }
//! }
//!
//! let observers = Observers::new();
//! let timeouts = Arc::new(Timeouts::default());
//! observers.add(timeouts.clone());
//! assert!(!observers.is_empty());
//! ```

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::RwLock;

use crate::errors::RpcError;
use crate::worker::{WorkerContext, WorkerResult};

/// How an outgoing RPC call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallOutcome {
    /// The reply carried a result.
    Ok,
    /// The reply carried an error (the method raised, or refused the call:
    /// `MethodNotFound`, `IncorrectSignature`, `MalformedRequest`).
    RemoteError,
    /// No reply within the call's timeout.
    Timeout,
    /// No queue is bound for the service (nameko's `UnknownService`).
    UnknownService,
    /// Anything else: the broker refused or could not take the request, the arguments
    /// did not serialize, the reply did not convert, the proxy stopped.
    Failed,
}

impl CallOutcome {
    /// The outcome of a call that ended with `result`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use nameko_core::errors::RpcError;
    /// use nameko_core::extension::CallOutcome;
    ///
    /// assert_eq!(CallOutcome::of(&Ok::<_, RpcError>(1)), CallOutcome::Ok);
    /// let timeout: Result<(), _> = Err(RpcError::Timeout(Duration::from_secs(1)));
    /// assert_eq!(CallOutcome::of(&timeout).as_str(), "timeout");
    /// ```
    #[must_use]
    pub fn of<T>(result: &Result<T, RpcError>) -> Self {
        match result {
            Ok(_) => Self::Ok,
            Err(
                RpcError::Remote(_)
                | RpcError::Registered(_)
                | RpcError::MethodNotFound(_)
                | RpcError::IncorrectSignature(_)
                | RpcError::MalformedRequest(_),
            ) => Self::RemoteError,
            Err(RpcError::Timeout(_)) => Self::Timeout,
            Err(RpcError::UnknownService(_)) => Self::UnknownService,
            Err(_) => Self::Failed,
        }
    }

    /// `ok`, `remote_error`, `timeout`, `unknown_service` or `failed`: a metric label.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::RemoteError => "remote_error",
            Self::Timeout => "timeout",
            Self::UnknownService => "unknown_service",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for CallOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One outgoing RPC call that ended, as an [`Observer`] sees it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct OutgoingCall<'a> {
    /// The service called.
    pub service: &'a str,
    /// The method called.
    pub method: &'a str,
    /// How it ended.
    pub outcome: CallOutcome,
    /// From sending the request to the end of the wait for its reply.
    pub duration: Duration,
}

impl<'a> OutgoingCall<'a> {
    /// A call of `service.method` that ended with `outcome` after `duration`.
    #[must_use]
    pub fn new(
        service: &'a str,
        method: &'a str,
        outcome: CallOutcome,
        duration: Duration,
    ) -> Self {
        Self {
            service,
            method,
            outcome,
            duration,
        }
    }
}

/// What became of a message an entrypoint did not simply ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Settlement {
    /// Given back to its queue, to be delivered again (a failed worker with
    /// `requeue_on_error`, a message taken but not started when the container stopped).
    Requeued,
    /// Rejected without requeue: a message no worker can handle (unreadable, not
    /// fitting the method). The broker drops it, or dead-letters it if the queue has a
    /// dead-letter exchange.
    Rejected,
    /// Re-published to its delay queue, for a later attempt (a retry policy).
    Retried,
    /// Sent to its dead-letter queue or exchange after its last attempt failed.
    DeadLettered,
}

impl Settlement {
    /// `requeued`, `rejected`, `retried` or `dead_lettered`: a metric label.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requeued => "requeued",
            Self::Rejected => "rejected",
            Self::Retried => "retried",
            Self::DeadLettered => "dead_lettered",
        }
    }
}

impl fmt::Display for Settlement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Told what a container's extensions do besides running workers. Every method has an
/// empty default: implement those you need. Methods are called on the task doing the
/// work: keep them short and never block.
pub trait Observer: Send + Sync + 'static {
    /// A worker of the container finished: its dependencies saw its result
    /// (`worker_result`) and are about to tear down.
    fn worker_finished(&self, worker: &WorkerContext, result: &WorkerResult) {
        let _ = (worker, result);
    }

    /// An RPC call made through one of the container's proxies ended (when its result
    /// was awaited, or when sending it failed).
    fn call_finished(&self, call: &OutgoingCall<'_>) {
        let _ = call;
    }

    /// `count` messages of `queue` were settled otherwise than by an ack.
    fn message_settled(&self, queue: &str, settlement: Settlement, count: u64) {
        let _ = (queue, settlement, count);
    }
}

/// The observers of a container: cheap to clone, clones share the list.
#[derive(Clone, Default)]
pub struct Observers {
    inner: Arc<Inner>,
}

struct Inner {
    any: AtomicBool,
    list: RwLock<Arc<[Arc<dyn Observer>]>>,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            any: AtomicBool::new(false),
            list: RwLock::new(Arc::new([])),
        }
    }
}

impl fmt::Debug for Observers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observers")
            .field("count", &self.inner.list.read().len())
            .finish()
    }
}

impl Observers {
    /// No observers.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an observer.
    pub fn add(&self, observer: Arc<dyn Observer>) {
        let mut list = self.inner.list.write();
        let mut all: Vec<Arc<dyn Observer>> = list.iter().cloned().collect();
        all.push(observer);
        *list = all.into();
        self.inner.any.store(true, Ordering::Release);
    }

    /// Whether there are none (then nothing need be measured for them).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        !self.inner.any.load(Ordering::Acquire)
    }

    /// Tells every observer that a worker finished.
    pub fn worker_finished(&self, worker: &WorkerContext, result: &WorkerResult) {
        if self.is_empty() {
            return;
        }
        let list = self.inner.list.read().clone();
        for observer in list.iter() {
            observer.worker_finished(worker, result);
        }
    }

    /// Tells every observer that a call ended.
    pub fn call_finished(&self, call: &OutgoingCall<'_>) {
        if self.is_empty() {
            return;
        }
        let list = self.inner.list.read().clone();
        for observer in list.iter() {
            observer.call_finished(call);
        }
    }

    /// Tells every observer that messages were settled otherwise than by an ack.
    pub fn message_settled(&self, queue: &str, settlement: Settlement, count: u64) {
        if self.is_empty() || count == 0 {
            return;
        }
        let list = self.inner.list.read().clone();
        for observer in list.iter() {
            observer.message_settled(queue, settlement, count);
        }
    }
}
