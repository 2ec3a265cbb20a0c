//! Workers: one run of one entrypoint, and what it knows about its call.

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::config::Config;
use crate::context::{ContextData, extend_call_id_stack};
use crate::errors::RemoteError;
use crate::transport::FieldTable;
use crate::wire::CallArgs;

/// What a worker ended with: the method's result as JSON, or the error dict it failed
/// with.
pub type WorkerResult = Result<Value, RemoteError>;

/// Everything a worker knows about its call: nameko's `WorkerContext`.
///
/// The call id is `<service>.<entrypoint>.<uuid>`; the call id stack is the caller's
/// stack plus this call id, keeping the last `parent_calls_tracked + 1` entries.
#[derive(Clone)]
pub struct WorkerContext {
    service_name: Arc<str>,
    entrypoint: Arc<str>,
    call_id: String,
    call_id_stack: Vec<String>,
    origin_call_id: Option<String>,
    immediate_parent_call_id: Option<String>,
    context: ContextData,
    args: Arc<CallArgs>,
    config: Arc<Config>,
    outgoing: Arc<OnceLock<Arc<FieldTable>>>,
    attempt: u32,
}

impl WorkerContext {
    /// A worker context. `parent_stack` is the caller's call id stack (from the
    /// `nameko.call_id_stack` header); `call_uuid` the unique part of the new call id.
    #[must_use]
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        service_name: Arc<str>,
        entrypoint: Arc<str>,
        call_uuid: &str,
        parent_stack: &[String],
        context: ContextData,
        args: Arc<CallArgs>,
        config: Arc<Config>,
        parent_calls_tracked: usize,
    ) -> Self {
        let call_id = format!("{service_name}.{entrypoint}.{call_uuid}");
        let call_id_stack =
            extend_call_id_stack(parent_stack, call_id.clone(), parent_calls_tracked);
        Self {
            service_name,
            entrypoint,
            call_id,
            call_id_stack,
            origin_call_id: parent_stack.first().cloned(),
            immediate_parent_call_id: parent_stack.last().cloned(),
            context,
            args,
            config,
            outgoing: Arc::default(),
            attempt: 1,
        }
    }

    /// Which attempt at handling its message this worker is, from 1: more than 1 when
    /// an entrypoint with a retry policy ([`crate::retry`]) retries a failed delivery.
    #[must_use]
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Sets [`attempt`](Self::attempt), for entrypoints that retry.
    pub fn set_attempt(&mut self, attempt: u32) {
        self.attempt = attempt;
    }

    /// The service's name.
    #[must_use]
    pub fn service_name(&self) -> &str {
        &self.service_name
    }

    /// The entrypoint (method) name.
    #[must_use]
    pub fn entrypoint(&self) -> &str {
        &self.entrypoint
    }

    /// This call's id, `<service>.<entrypoint>.<uuid>`.
    #[must_use]
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The call id stack: ancestors' call ids, then this one.
    #[must_use]
    pub fn call_id_stack(&self) -> &[String] {
        &self.call_id_stack
    }

    /// The first call id of the caller's stack: where the chain of calls started.
    #[must_use]
    pub fn origin_call_id(&self) -> Option<&str> {
        self.origin_call_id.as_deref()
    }

    /// The last call id of the caller's stack: the call that made this one.
    #[must_use]
    pub fn immediate_parent_call_id(&self) -> Option<&str> {
        self.immediate_parent_call_id.as_deref()
    }

    /// The context data the call came with.
    #[must_use]
    pub fn context(&self) -> &ContextData {
        &self.context
    }

    /// The arguments the entrypoint was called with.
    #[must_use]
    pub fn args(&self) -> &CallArgs {
        &self.args
    }

    /// The container's configuration.
    #[must_use]
    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The headers every message this worker sends carries: its context as
    /// `nameko.<key>` and its call id stack. Computed once per worker.
    #[must_use]
    pub fn outgoing_headers(&self) -> &Arc<FieldTable> {
        self.outgoing
            .get_or_init(|| Arc::new(self.context.to_headers(&self.call_id_stack)))
    }
}

impl fmt::Debug for WorkerContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerContext")
            .field("call_id", &self.call_id)
            .field("call_id_stack", &self.call_id_stack)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

/// A worker that finished and was torn down, as entrypoint waiters see it.
#[derive(Debug, Clone)]
pub struct WorkerEvent {
    /// The worker's context.
    pub context: Arc<WorkerContext>,
    /// How it ended.
    pub result: WorkerResult,
}
