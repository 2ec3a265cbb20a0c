//! The container as its entrypoints use it: binding calls, the bounded worker pool, and
//! running workers through the dependency hooks.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::task::task_tracker::TaskTrackerToken;
use tracing::{Instrument, Span};

use super::instrumentation::{self, Carrier, WorkerStart};
use super::{ContainerContext, ContainerState};
use crate::context::ContextData;
use crate::errors::RemoteError;
use crate::method::{BindError, Natives, Output, Param};
use crate::wire::CallArgs;
use crate::worker::{Parents, WorkerContext, WorkerResult, call_id_prefix};

/// A worker could not be had.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The arguments do not fit the entrypoint.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The container is stopping and takes no new work.
    #[error("the container is stopping")]
    Stopping,
    /// The container was killed (nameko's `ContainerBeingKilled`).
    #[error("the container is being killed")]
    Killed,
    /// The container is not running.
    #[error("the container is not running ({0:?})")]
    NotRunning(ContainerState),
}

/// What the container knows of a bound call's method: its name, parameters and
/// sensitive arguments.
pub(crate) struct CallShape {
    pub(crate) name: Arc<str>,
    pub(crate) params: &'static [Param],
    pub(crate) sensitive: Option<Arc<[&'static str]>>,
}

/// What the container does for its entrypoints; implemented by the container only.
#[async_trait]
pub(crate) trait WorkerPool: Send + Sync + 'static {
    fn context(&self) -> &ContainerContext;
    fn bind(
        &self,
        method: &str,
        args: &CallArgs,
        natives: Natives,
    ) -> Result<(CallShape, Box<dyn Any + Send>), BindError>;
    async fn permit(&self) -> Result<OwnedSemaphorePermit, SpawnError>;
    fn try_permit(&self) -> Option<OwnedSemaphorePermit>;
    fn token(&self) -> TaskTrackerToken;
    fn parent_calls_tracked(&self) -> usize;
    async fn run(
        &self,
        worker: &WorkerContext,
        call: Box<dyn Any + Send>,
    ) -> Result<Output, RemoteError>;
    async fn finish(&self, worker: &Arc<WorkerContext>, result: &WorkerResult);
    /// Does what [`WorkerPool::finish`] does at once when no dependency has hooks to
    /// await; `false` (having done nothing) otherwise.
    fn finish_now(&self, worker: &Arc<WorkerContext>, result: &WorkerResult) -> bool;
}

/// The container as an entrypoint uses it: nameko's `container.spawn_worker`, in steps
/// that a consuming entrypoint can interleave with its own work.
///
/// 1. [`Workers::bind`] checks a call's arguments against the method (nameko's
///    `MethodNotFound` and `IncorrectSignature`), before any worker is taken;
/// 2. [`Workers::slot`] waits for a free worker (at most `max_workers` run at once),
///    and is refused once the container stops;
/// 3. [`Workers::start`] makes the [`Worker`]: its context (call id, call id stack,
///    context data) and its `tracing` span;
/// 4. [`Worker::run`] builds the service instance from its dependencies, runs the
///    method and lets the dependencies see its outcome (`worker_complete`: a database
///    session commits there); the entrypoint then does what it must with the result
///    (reply, ack);
/// 5. [`WorkerRun::finish`] runs the dependencies' `worker_result` and
///    `worker_teardown` hooks, and frees the worker.
///
/// A graceful stop of the container waits for every worker, from [`Workers::start`] to
/// [`WorkerRun::finish`] (or until the worker is dropped), for at most
/// `SHUTDOWN_TIMEOUT`.
#[derive(Clone)]
pub struct Workers {
    pool: Arc<dyn WorkerPool>,
    entrypoint_kind: &'static str,
}

impl fmt::Debug for Workers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workers")
            .field("service", &self.pool.context().service_name())
            .finish_non_exhaustive()
    }
}

/// A call bound to a method, ready to run.
pub struct BoundCall {
    shape: CallShape,
    args: Arc<CallArgs>,
    call: Box<dyn Any + Send>,
}

impl BoundCall {
    /// The method it calls.
    #[must_use]
    pub fn method(&self) -> &str {
        &self.shape.name
    }
}

impl fmt::Debug for BoundCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundCall")
            .field("method", &self.shape.name)
            .finish_non_exhaustive()
    }
}

/// A free place in the worker pool, held until the worker finishes.
#[derive(Debug)]
pub struct WorkerSlot {
    permit: OwnedSemaphorePermit,
}

impl Workers {
    pub(crate) fn new(pool: Arc<dyn WorkerPool>) -> Self {
        Self {
            pool,
            entrypoint_kind: "",
        }
    }

    /// The same workers, as the entrypoint of `kind` starts them
    /// ([`WorkerContext::entrypoint_kind`]).
    pub(crate) fn for_entrypoint(&self, kind: &'static str) -> Self {
        Self {
            pool: self.pool.clone(),
            entrypoint_kind: kind,
        }
    }

    /// The kind of the entrypoint these workers are started by
    /// ([`Entrypoint::kind`](super::Entrypoint::kind)); empty for workers started by hand.
    #[must_use]
    pub fn entrypoint_kind(&self) -> &'static str {
        self.entrypoint_kind
    }

    /// The container's context: service name, configuration, transport, lifecycle
    /// signals, shared extensions.
    #[must_use]
    pub fn container(&self) -> &ContainerContext {
        self.pool.context()
    }

    /// Binds arguments to `method`'s parameters.
    ///
    /// # Errors
    ///
    /// [`BindError`] for a method without an entrypoint, arguments that do not fit its
    /// signature, or values that do not convert to its parameter types.
    pub fn bind(&self, method: &str, args: CallArgs) -> Result<BoundCall, BindError> {
        self.bind_with(method, args, Natives::new())
    }

    /// Binds arguments and native values (see [`Natives`]) to `method`'s parameters.
    ///
    /// # Errors
    ///
    /// As [`Workers::bind`].
    pub fn bind_with(
        &self,
        method: &str,
        args: CallArgs,
        natives: Natives,
    ) -> Result<BoundCall, BindError> {
        let (shape, call) = self.pool.bind(method, &args, natives)?;
        Ok(BoundCall {
            shape,
            args: Arc::new(args),
            call,
        })
    }

    /// Waits for a free worker.
    ///
    /// # Errors
    ///
    /// [`SpawnError::Stopping`] once the container stops, [`SpawnError::Killed`] once it
    /// is killed: give the work back.
    pub async fn slot(&self) -> Result<WorkerSlot, SpawnError> {
        Ok(WorkerSlot {
            permit: self.pool.permit().await?,
        })
    }

    /// A free worker if there is one now and the container takes work.
    #[must_use]
    pub fn try_slot(&self) -> Option<WorkerSlot> {
        self.pool.try_permit().map(|permit| WorkerSlot { permit })
    }

    /// Makes the worker of a bound call: a new call id `<service>.<method>.<uuid>`, the
    /// call id stack `parent_stack` + that id (kept to `parent_calls_tracked` + 1
    /// entries), the context data it came with.
    #[must_use]
    pub fn start(
        &self,
        slot: WorkerSlot,
        call: BoundCall,
        context: ContextData,
        parent_stack: &[String],
    ) -> Worker {
        self.start_with(slot, call, context, Parents::Borrowed(parent_stack), None)
    }

    /// [`Workers::start`] taking the caller's call id stack instead of copying it: what
    /// [`ContextData::from_owned_headers`] returns for a message the entrypoint owns.
    #[must_use]
    pub fn start_with_parents(
        &self,
        slot: WorkerSlot,
        call: BoundCall,
        context: ContextData,
        parent_stack: Vec<String>,
    ) -> Worker {
        self.start_with(slot, call, context, Parents::Owned(parent_stack), None)
    }

    /// [`Workers::start`] for a call that came with more than its context data: an HTTP
    /// request's headers, say. The installed
    /// [`Instrumentation`](instrumentation::Instrumentation) reads `incoming` (a
    /// `traceparent` header) instead of the context data when it makes the worker's span.
    #[must_use]
    pub fn start_from(
        &self,
        slot: WorkerSlot,
        call: BoundCall,
        context: ContextData,
        parent_stack: &[String],
        incoming: &dyn Carrier,
    ) -> Worker {
        self.start_with(
            slot,
            call,
            context,
            Parents::Borrowed(parent_stack),
            Some(incoming),
        )
    }

    fn start_with(
        &self,
        slot: WorkerSlot,
        call: BoundCall,
        context: ContextData,
        parents: Parents<'_>,
        incoming: Option<&dyn Carrier>,
    ) -> Worker {
        let ctx = self.pool.context();
        let BoundCall { shape, args, call } = call;
        let service_name = ctx.shared_service_name().clone();
        let mut call_id = call_id_prefix(&service_name, &shape.name, ctx.ids().id_len_hint());
        ctx.ids().push_next_id(&mut call_id);
        let mut context = WorkerContext::with_parents(
            service_name,
            shape.name,
            call_id,
            parents,
            context,
            args,
            ctx.config().clone(),
            self.pool.parent_calls_tracked(),
        );
        context.set_entrypoint_kind(self.entrypoint_kind);
        context.set_sensitive_arguments(shape.params, shape.sensitive);
        let context = Arc::new(context);
        let span = instrumentation::installed()
            .and_then(|hooks| {
                hooks.worker_span(&WorkerStart {
                    worker: &context,
                    entrypoint_kind: self.entrypoint_kind,
                    incoming: incoming.unwrap_or(context.context()),
                })
            })
            .unwrap_or_else(|| {
                if spans_unseen() {
                    return Span::none();
                }
                tracing::info_span!(
                    "worker",
                    service = ctx.service_name(),
                    entrypoint = context.entrypoint(),
                    call_id = context.call_id()
                )
            });
        Worker {
            pool: self.pool.clone(),
            context,
            call,
            span,
            permit: slot.permit,
            token: self.pool.token(),
        }
    }

    /// Runs `job` with `worker` in a task of its own, in the worker's span; the task ends
    /// at once if the container is killed.
    pub fn spawn<F, Fut>(&self, worker: Worker, job: F)
    where
        F: FnOnce(Worker) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let killed = self.pool.context().killed().clone();
        let span = worker.span.clone();
        // Boxed at once: a worker's future holds the whole pipeline (the method, the
        // dependency hooks, the reply), and whatever holds it by value (the `select!`
        // below, the task, which moves its future into place when spawned and overwrites
        // it when it completes) would copy all of it; through the box they move a pointer.
        let job = Box::pin(job(worker));
        tokio::spawn(
            async move {
                tokio::select! {
                    biased;
                    () = killed.cancelled() => {}
                    () = job => {}
                }
            }
            .instrument(span),
        );
    }
}

/// One worker: a call about to run on a fresh service instance.
pub struct Worker {
    pool: Arc<dyn WorkerPool>,
    context: Arc<WorkerContext>,
    call: Box<dyn Any + Send>,
    span: Span,
    permit: OwnedSemaphorePermit,
    token: TaskTrackerToken,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Sets which attempt at its message this worker is (see
    /// [`WorkerContext::attempt`]); only before it runs.
    pub fn set_attempt(&mut self, attempt: u32) {
        if let Some(context) = Arc::get_mut(&mut self.context) {
            context.set_attempt(attempt);
        }
    }

    /// Gives the worker an attribute (see [`WorkerContext::attribute`]), before it runs.
    pub fn set_attribute(&mut self, key: &'static str, value: impl Into<Arc<str>>) {
        Arc::make_mut(&mut self.context).set_attribute(key, value);
    }

    /// What the worker knows about its call.
    #[must_use]
    pub fn context(&self) -> &Arc<WorkerContext> {
        &self.context
    }

    /// The worker's span (`worker`, with `service`, `entrypoint` and `call_id`, or the
    /// one the installed [`Instrumentation`](instrumentation::Instrumentation) made):
    /// what the entrypoint does for this worker belongs in it. [`Span::none`] when
    /// nothing would see it (no `tracing` subscriber was ever set, and `log` drops INFO
    /// records).
    #[must_use]
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// Builds the service instance from its dependencies and runs the method. A panic is
    /// the worker's error (`WorkerPanic`); so is a kill of the container.
    pub async fn run(self) -> WorkerRun {
        let Self {
            pool,
            context,
            call,
            span,
            permit,
            token,
        } = self;
        let killed = pool.context().killed().clone();
        let result = tokio::select! {
            biased;
            () = killed.cancelled() => Err(killed_error()),
            result = pool.run(&context, call).instrument(span.clone()) => result,
        };
        WorkerRun {
            pool,
            context,
            result,
            span,
            _permit: permit,
            _token: token,
        }
    }
}

/// A worker whose method has run, before its dependencies saw the result.
pub struct WorkerRun {
    pool: Arc<dyn WorkerPool>,
    context: Arc<WorkerContext>,
    result: Result<Output, RemoteError>,
    span: Span,
    _permit: OwnedSemaphorePermit,
    _token: TaskTrackerToken,
}

impl fmt::Debug for WorkerRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerRun")
            .field("context", &self.context)
            .field("result", &self.result)
            .finish_non_exhaustive()
    }
}

impl WorkerRun {
    /// What the worker knows about its call.
    #[must_use]
    pub fn context(&self) -> &Arc<WorkerContext> {
        &self.context
    }

    /// The worker's span.
    #[must_use]
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// What the method returned, or the error the worker failed with.
    pub fn result(&self) -> &Result<Output, RemoteError> {
        &self.result
    }

    /// Gives the worker an attribute once it has run (an HTTP entrypoint's
    /// `status_code`), for the dependencies' `worker_result` and `worker_teardown` to see
    /// (see [`WorkerContext::attribute`]).
    pub fn set_attribute(&mut self, key: &'static str, value: impl Into<Arc<str>>) {
        Arc::make_mut(&mut self.context).set_attribute(key, value);
    }

    /// Takes a native output of type `T` (see [`Output::Native`]); the dependencies then
    /// see `null`.
    pub fn take_native<T: 'static>(&mut self) -> Option<T> {
        let Ok(output) = &mut self.result else {
            return None;
        };
        let taken = std::mem::replace(output, Output::Json(serde_json::Value::Null));
        match taken.downcast::<T>() {
            Ok(value) => Some(value),
            Err(other) => {
                *output = other;
                None
            }
        }
    }

    /// Lets the dependencies see the result (`worker_result`) and tear down
    /// (`worker_teardown`), tells entrypoint waiters, and frees the worker.
    pub async fn finish(self) {
        let _ = self.finish_with_result().await;
    }

    /// [`WorkerRun::finish`], returning the result as the dependencies saw it (a native
    /// output is `null` there).
    pub async fn finish_with_result(self) -> WorkerResult {
        let result = self.result.map(Output::into_json);
        let finished = {
            let _entered = self.span.enter();
            self.pool.finish_now(&self.context, &result)
        };
        if !finished {
            self.pool
                .finish(&self.context, &result)
                .instrument(self.span)
                .await;
        }
        result
    }
}

/// Whether nobody would see a worker's span: no `tracing` subscriber was ever set, and
/// `log` drops INFO records. `tracing`'s `log` fallback (switched on by any crate of the
/// build that asks for it) otherwise gives each disabled span its metadata and calls
/// into `log` on its creation and on every enter and exit; `Span::none()` skips that.
fn spans_unseen() -> bool {
    !tracing::dispatcher::has_been_set() && log::max_level() < log::LevelFilter::Info
}

fn killed_error() -> RemoteError {
    RemoteError::new(
        "ContainerBeingKilled",
        "nameko.exceptions.ContainerBeingKilled",
        Vec::<String>::new(),
        "",
    )
}
