//! What `call_async` returns: a call in flight whose `result()` waits for its reply.
//!
//! A task waits for the reply as soon as the call is sent, so that `result()` can be
//! interrupted (Ctrl-C) and asked again without losing the reply, and answers the same
//! result every time, as nameko's `RpcReply` does.

use std::sync::Arc;

use nameko_core::errors::RpcError;
use nameko_core::rpc::RpcReply;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A call sent with `call_async`.
#[derive(Debug)]
pub(crate) struct CallHandle {
    service: Arc<str>,
    method: Arc<str>,
    outcome: watch::Receiver<Option<Result<Value, RpcError>>>,
    task: JoinHandle<()>,
}

impl CallHandle {
    /// Starts waiting for `reply`.
    pub(crate) fn spawn(service: Arc<str>, method: Arc<str>, reply: RpcReply<Value>) -> Self {
        let (tx, outcome) = watch::channel(None);
        let task = tokio::spawn(async move {
            let result = reply.result().await;
            let _ = tx.send(Some(result));
        });
        Self {
            service,
            method,
            outcome,
            task,
        }
    }

    /// `calculator.add (pending)`, or `(done)`.
    pub(crate) fn describe(&self) -> String {
        let state = if self.outcome.borrow().is_some() {
            "done"
        } else {
            "pending"
        };
        format!("{}.{} ({state})", self.service, self.method)
    }

    /// The service and method called.
    pub(crate) fn target(&self) -> (&Arc<str>, &Arc<str>) {
        (&self.service, &self.method)
    }

    /// Waits for the reply (at most until the call's timeout).
    pub(crate) async fn result(&self) -> Result<Value, RpcError> {
        let mut outcome = self.outcome.clone();
        match outcome.wait_for(Option::is_some).await {
            Ok(result) => result.clone().unwrap_or(Err(RpcError::Stopped)),
            Err(_) => Err(RpcError::Stopped),
        }
    }
}

impl Drop for CallHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}
