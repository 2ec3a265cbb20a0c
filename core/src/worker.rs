//! Workers: one run of one entrypoint, and what it knows about its call.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use serde_json::{Map, Value};

use crate::config::Config;
use crate::context::{ContextData, extend_call_id_stack};
use crate::errors::RemoteError;
use crate::method::Param;
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
    /// The kept ancestors' call ids, then this call's id: never empty.
    call_id_stack: Vec<String>,
    /// The caller's first call id, when the stack did not keep it.
    origin_call_id: Option<String>,
    /// The caller's last call id, when the stack did not keep it.
    immediate_parent_call_id: Option<String>,
    context: ContextData,
    args: Arc<CallArgs>,
    config: Arc<Config>,
    outgoing: OnceLock<Arc<FieldTable>>,
    attempt: u32,
    kind: &'static str,
    started: Instant,
    attributes: Vec<(&'static str, Arc<str>)>,
    params: &'static [Param],
    sensitive: Option<Arc<[&'static str]>>,
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
        let mut call_id = call_id_prefix(&service_name, &entrypoint, call_uuid.len());
        call_id.push_str(call_uuid);
        Self::with_parents(
            service_name,
            entrypoint,
            call_id,
            Parents::Borrowed(parent_stack),
            context,
            args,
            config,
            parent_calls_tracked,
        )
    }

    /// [`WorkerContext::new`] with the call id made (see [`call_id_prefix`]); a parent
    /// stack given away moves its entries into this worker's stack.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn with_parents(
        service_name: Arc<str>,
        entrypoint: Arc<str>,
        call_id: String,
        parents: Parents<'_>,
        context: ContextData,
        args: Arc<CallArgs>,
        config: Arc<Config>,
        parent_calls_tracked: usize,
    ) -> Self {
        let (stack, dropped) = match parents {
            Parents::Borrowed(parent_stack) => {
                let keep = parent_stack.len().min(parent_calls_tracked);
                let origin = if keep < parent_stack.len() {
                    parent_stack.first().cloned()
                } else {
                    None
                };
                let parent = if keep == 0 {
                    parent_stack.last().cloned()
                } else {
                    None
                };
                let stack = extend_call_id_stack(parent_stack, call_id, parent_calls_tracked);
                (stack, (origin, parent))
            }
            Parents::Owned(mut parent_stack) => {
                let parents = parent_stack.len();
                let keep = parents.min(parent_calls_tracked);
                let mut dropped = (None, None);
                if keep < parents {
                    if keep == 0 {
                        dropped.1 = parent_stack.last().cloned();
                    }
                    dropped.0 = Some(std::mem::take(&mut parent_stack[0]));
                    parent_stack.drain(..parents - keep);
                }
                parent_stack.push(call_id);
                (parent_stack, dropped)
            }
        };
        Self::assemble(
            service_name,
            entrypoint,
            stack,
            dropped,
            context,
            args,
            config,
        )
    }

    fn assemble(
        service_name: Arc<str>,
        entrypoint: Arc<str>,
        call_id_stack: Vec<String>,
        (origin_call_id, immediate_parent_call_id): (Option<String>, Option<String>),
        context: ContextData,
        args: Arc<CallArgs>,
        config: Arc<Config>,
    ) -> Self {
        Self {
            service_name,
            entrypoint,
            call_id_stack,
            origin_call_id,
            immediate_parent_call_id,
            context,
            args,
            config,
            outgoing: OnceLock::new(),
            attempt: 1,
            kind: "",
            started: Instant::now(),
            attributes: Vec::new(),
            params: &[],
            sensitive: None,
        }
    }

    /// The kind of entrypoint that started the worker (`"rpc"`, `"event_handler"`,
    /// `"http"`, `"timer"`, ...: its [`Entrypoint::kind`](crate::extension::Entrypoint::kind)),
    /// or `""` for a worker started by hand (a test's entrypoint hook).
    #[must_use]
    pub fn entrypoint_kind(&self) -> &'static str {
        self.kind
    }

    /// Sets [`entrypoint_kind`](Self::entrypoint_kind); the container does it for the
    /// workers an entrypoint starts.
    pub fn set_entrypoint_kind(&mut self, kind: &'static str) {
        self.kind = kind;
    }

    /// When the worker started (before its dependencies were asked for their values).
    #[must_use]
    pub fn started(&self) -> Instant {
        self.started
    }

    /// An attribute the entrypoint gave the worker: what it knows of the call besides
    /// its arguments, for metrics, logs and traces. The built-in ones: `source_service`
    /// and `event_type` (event handlers); `http_method`, `endpoint` and, once the
    /// response is made, `status_code` (HTTP).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use nameko_core::worker::WorkerContext;
    /// # let mut worker = WorkerContext::new(Arc::from("orders"), Arc::from("on_paid"), "1",
    /// #     &[], Default::default(), Default::default(), Default::default(), 10);
    /// worker.set_attribute("event_type", "payment_received");
    /// assert_eq!(worker.attribute("event_type"), Some("payment_received"));
    /// assert_eq!(worker.attribute("status_code"), None);
    /// ```
    #[must_use]
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| &**v)
    }

    /// Every attribute, in the order they were set.
    pub fn attributes(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.attributes.iter().map(|(k, v)| (*k, &**v))
    }

    /// Sets an attribute (see [`attribute`](Self::attribute)), replacing one of the
    /// same key.
    pub fn set_attribute(&mut self, key: &'static str, value: impl Into<Arc<str>>) {
        let value = value.into();
        match self.attributes.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.attributes.push((key, value)),
        }
    }

    /// Says which arguments are sensitive (dotted paths, see [`crate::sensitive`]) and
    /// the method's parameters, to name positional arguments by; the container does it
    /// from the entrypoint's `sensitive_arguments`.
    pub fn set_sensitive_arguments(
        &mut self,
        params: &'static [Param],
        sensitive: Option<Arc<[&'static str]>>,
    ) {
        self.params = params;
        self.sensitive = sensitive;
    }

    /// The dotted paths of the call's sensitive arguments.
    #[must_use]
    pub fn sensitive_arguments(&self) -> &[&'static str] {
        self.sensitive.as_deref().unwrap_or(&[])
    }

    /// The call's arguments by parameter name, with the sensitive ones replaced by
    /// [`REDACTED`](crate::sensitive::REDACTED): what a log line, a trace or an error
    /// message may show of them (nameko's `get_redacted_args`).
    #[must_use]
    pub fn redacted_args(&self) -> Map<String, Value> {
        crate::sensitive::redacted_call_args(self.params, &self.args, self.sensitive_arguments())
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
        self.call_id_stack.last().map_or("", String::as_str)
    }

    /// The ancestors' call ids the stack kept.
    fn kept_parents(&self) -> &[String] {
        self.call_id_stack
            .split_last()
            .map_or(&[][..], |(_, parents)| parents)
    }

    /// The call id stack: ancestors' call ids, then this one.
    #[must_use]
    pub fn call_id_stack(&self) -> &[String] {
        &self.call_id_stack
    }

    /// The first call id of the caller's stack: where the chain of calls started.
    #[must_use]
    pub fn origin_call_id(&self) -> Option<&str> {
        self.origin_call_id
            .as_deref()
            .or_else(|| self.kept_parents().first().map(String::as_str))
    }

    /// The last call id of the caller's stack: the call that made this one.
    #[must_use]
    pub fn immediate_parent_call_id(&self) -> Option<&str> {
        self.immediate_parent_call_id
            .as_deref()
            .or_else(|| self.kept_parents().last().map(String::as_str))
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
            .field("call_id", &self.call_id())
            .field("call_id_stack", &self.call_id_stack)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

/// The caller's call id stack, as an entrypoint has it.
pub(crate) enum Parents<'a> {
    /// Borrowed: the entries kept are copied.
    Borrowed(&'a [String]),
    /// Given away: the entries kept move.
    Owned(Vec<String>),
}

/// `<service>.<entrypoint>.`, with room for the `id_len` bytes of the unique part that
/// completes a call id.
pub(crate) fn call_id_prefix(service_name: &str, entrypoint: &str, id_len: usize) -> String {
    let mut call_id = String::with_capacity(service_name.len() + entrypoint.len() + 2 + id_len);
    call_id.push_str(service_name);
    call_id.push('.');
    call_id.push_str(entrypoint);
    call_id.push('.');
    call_id
}

/// A worker that finished and was torn down, as entrypoint waiters see it.
#[derive(Debug, Clone)]
pub struct WorkerEvent {
    /// The worker's context.
    pub context: Arc<WorkerContext>,
    /// How it ended.
    pub result: WorkerResult,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("p.m.{i}")).collect()
    }

    fn made_both_ways(parents: usize, tracked: usize) -> (WorkerContext, WorkerContext) {
        let parent_stack = stack(parents);
        let borrowed = WorkerContext::new(
            Arc::from("svc"),
            Arc::from("m"),
            "u",
            &parent_stack,
            ContextData::new(),
            Arc::default(),
            Arc::default(),
            tracked,
        );
        let owned = WorkerContext::with_parents(
            Arc::from("svc"),
            Arc::from("m"),
            "svc.m.u".to_owned(),
            Parents::Owned(parent_stack),
            ContextData::new(),
            Arc::default(),
            Arc::default(),
            tracked,
        );
        (borrowed, owned)
    }

    #[test]
    fn stacks_keep_origin_and_parent_however_deep() {
        for parents in 0..5 {
            for tracked in 0..5 {
                let (borrowed, owned) = made_both_ways(parents, tracked);
                for ctx in [&borrowed, &owned] {
                    assert_eq!(ctx.call_id(), "svc.m.u");
                    let kept = parents.min(tracked);
                    let mut expected = stack(parents)[parents - kept..].to_vec();
                    expected.push("svc.m.u".to_owned());
                    assert_eq!(ctx.call_id_stack(), expected, "{parents} {tracked}");
                    let first = (parents > 0).then(|| "p.m.0".to_owned());
                    let last = parents.checked_sub(1).map(|i| format!("p.m.{i}"));
                    assert_eq!(
                        ctx.origin_call_id(),
                        first.as_deref(),
                        "{parents} {tracked}"
                    );
                    assert_eq!(
                        ctx.immediate_parent_call_id(),
                        last.as_deref(),
                        "{parents} {tracked}"
                    );
                }
            }
        }
    }
}
