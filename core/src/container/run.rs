//! Spawning and running workers, and the entrypoint drivers that ask for them.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tracing::Instrument;

use super::{ContainerContext, ContainerError, Inner, SpawnError, WorkerHandle, panic_error};
use crate::context::ContextData;
use crate::errors::RemoteError;
use crate::service::{BindError, DependencyValues, Service};
use crate::wire::CallArgs;
use crate::worker::{WorkerContext, WorkerEvent, WorkerResult};

/// A call bound to an entrypoint, ready to run.
pub(crate) struct BoundCall {
    entrypoint: Arc<str>,
    args: Arc<CallArgs>,
    call: Box<dyn Any + Send>,
}

/// A free place in the worker pool.
pub(crate) struct WorkerSlot {
    permit: OwnedSemaphorePermit,
}

/// What an entrypoint does with a worker's result (for RPC: reply, then ack), before the
/// dependencies see it.
pub(crate) type ResultHandler =
    Box<dyn FnOnce(Arc<WorkerContext>, WorkerResult) -> BoxFuture<'static, WorkerResult> + Send>;

/// The container as its entrypoint drivers use it.
#[async_trait]
pub(crate) trait Spawner: Send + Sync + 'static {
    /// Binds arguments to an entrypoint, before a worker is spawned.
    fn bind(&self, entrypoint: &str, args: CallArgs) -> Result<BoundCall, BindError>;

    /// Waits for a free worker; refused once the container stops.
    async fn worker_slot(&self) -> Result<WorkerSlot, SpawnError>;

    /// A free worker if there is one now and the container takes work; `None` tells to
    /// wait with [`Spawner::worker_slot`].
    fn try_worker_slot(&self) -> Option<WorkerSlot>;

    /// Spawns a worker.
    fn spawn(
        &self,
        slot: WorkerSlot,
        call: BoundCall,
        context: ContextData,
        parent_stack: &[String],
        on_result: Option<ResultHandler>,
    ) -> WorkerHandle;

    /// Spawns a worker whose result only `on_result` sees.
    fn spawn_detached(
        &self,
        slot: WorkerSlot,
        call: BoundCall,
        context: ContextData,
        parent_stack: &[String],
        on_result: ResultHandler,
    );
}

/// A running entrypoint (or a group of them, like all RPC methods on one queue).
#[async_trait]
pub(crate) trait Driver: Send + Sync {
    /// Declares what it consumes.
    async fn setup(&mut self, ctx: &ContainerContext) -> Result<(), ContainerError>;
    /// Starts taking work.
    async fn start(&self, spawner: Arc<dyn Spawner>) -> Result<(), ContainerError>;
    /// Stops taking work and gives back what it had not started; running workers go on.
    async fn stop(&self);
    /// Releases its consumers once every worker has finished.
    async fn close(&self);
    /// Stops at once.
    async fn kill(&self);
}

#[async_trait]
impl<S: Service> Spawner for Inner<S> {
    fn bind(&self, entrypoint: &str, args: CallArgs) -> Result<BoundCall, BindError> {
        let info = self
            .entrypoint(entrypoint)
            .ok_or_else(|| BindError::MethodNotFound(entrypoint.to_owned()))?;
        let call = S::bind(entrypoint, &args)?;
        Ok(BoundCall {
            entrypoint: info.name.clone(),
            args: Arc::new(args),
            call: Box::new(call),
        })
    }

    async fn worker_slot(&self) -> Result<WorkerSlot, SpawnError> {
        if self.ctx.killed().is_cancelled() {
            return Err(SpawnError::Killed);
        }
        tokio::select! {
            biased;
            () = self.ctx.killed().cancelled() => Err(SpawnError::Killed),
            () = self.ctx.stopping().cancelled() => Err(SpawnError::Stopping),
            permit = self.pool.clone().acquire_owned() => permit
                .map(|permit| WorkerSlot { permit })
                .map_err(|_| SpawnError::Killed),
        }
    }

    fn try_worker_slot(&self) -> Option<WorkerSlot> {
        if self.ctx.killed().is_cancelled() || self.ctx.stopping().is_cancelled() {
            return None;
        }
        let permit = self.pool.clone().try_acquire_owned().ok()?;
        Some(WorkerSlot { permit })
    }

    fn spawn(
        &self,
        slot: WorkerSlot,
        call: BoundCall,
        context: ContextData,
        parent_stack: &[String],
        on_result: Option<ResultHandler>,
    ) -> WorkerHandle {
        let (tx, rx) = oneshot::channel();
        let worker = self.start_worker(slot, call, context, parent_stack, on_result, Some(tx));
        WorkerHandle {
            call_id: worker.call_id().to_owned(),
            result: rx,
        }
    }

    fn spawn_detached(
        &self,
        slot: WorkerSlot,
        call: BoundCall,
        context: ContextData,
        parent_stack: &[String],
        on_result: ResultHandler,
    ) {
        self.start_worker(slot, call, context, parent_stack, Some(on_result), None);
    }
}

impl<S: Service> Inner<S> {
    /// Spawns a worker; its result goes to `on_result`, then to `result` if given.
    fn start_worker(
        &self,
        slot: WorkerSlot,
        call: BoundCall,
        context: ContextData,
        parent_stack: &[String],
        on_result: Option<ResultHandler>,
        result: Option<oneshot::Sender<WorkerResult>>,
    ) -> Arc<WorkerContext> {
        let BoundCall {
            entrypoint,
            args,
            call,
        } = call;
        let uuid = self.ctx.ids().next_id();
        let worker = Arc::new(WorkerContext::new(
            Arc::from(S::name()),
            entrypoint,
            &uuid,
            parent_stack,
            context,
            args,
            self.ctx.config().clone(),
            self.parent_calls_tracked,
        ));
        let providers = self
            .providers
            .get()
            .cloned()
            .unwrap_or_else(|| Arc::from(Vec::new()));
        let expected = self
            .entrypoint(worker.entrypoint())
            .map(|e| e.def.expected_exceptions.clone())
            .unwrap_or_default();
        let events = self.events.clone();
        let killed = self.ctx.killed().clone();
        let span = tracing::info_span!(
            "worker",
            service = S::name(),
            entrypoint = worker.entrypoint(),
            call_id = worker.call_id()
        );
        let handle = Arc::clone(&worker);
        let work = async move {
            let _permit = slot.permit;
            let outcome = run_worker::<S>(&worker, &providers, call, &expected, on_result).await;
            if events.receiver_count() > 0 {
                let _ = events.send(WorkerEvent {
                    context: worker.clone(),
                    result: outcome.clone(),
                });
            }
            if let Some(result) = result {
                let _ = result.send(outcome);
            }
        }
        .instrument(span);
        self.workers.spawn(async move {
            tokio::select! {
                biased;
                () = killed.cancelled() => {}
                () = work => {}
            }
        });
        handle
    }
}

async fn run_worker<S: Service>(
    worker: &Arc<WorkerContext>,
    providers: &[(&'static str, Arc<dyn crate::dependency::ErasedProvider>)],
    call: Box<dyn Any + Send>,
    expected: &[&'static str],
    on_result: Option<ResultHandler>,
) -> WorkerResult {
    let prepared = AssertUnwindSafe(prepare::<S>(worker, providers))
        .catch_unwind()
        .await;
    let mut result = match prepared {
        Ok(Ok(service)) => match call.downcast::<S::Call>() {
            Ok(call) => match AssertUnwindSafe(service.invoke(*call)).catch_unwind().await {
                Ok(result) => result,
                Err(payload) => Err(panic_error(&*payload)),
            },
            Err(_) => Err(RemoteError::new(
                "Exception",
                "builtins.Exception",
                ["bound call of another service type"],
                "bound call of another service type",
            )),
        },
        Ok(Err(error)) => Err(error),
        Err(payload) => Err(panic_error(&*payload)),
    };
    match &result {
        Ok(_) => tracing::debug!("worker finished"),
        Err(e) if expected.contains(&e.exc_path.as_str()) => {
            tracing::warn!(exc_type = %e.exc_type, value = %e.value, "worker raised an expected exception");
        }
        Err(e) => {
            tracing::error!(exc_type = %e.exc_type, exc_path = %e.exc_path, value = %e.value, "worker failed")
        }
    }
    if let Some(handle) = on_result {
        result = handle(worker.clone(), result).await;
    }
    for (_, provider) in providers {
        if AssertUnwindSafe(provider.worker_result(worker, &result))
            .catch_unwind()
            .await
            .is_err()
        {
            tracing::error!("a dependency panicked in worker_result");
        }
    }
    for (_, provider) in providers {
        if AssertUnwindSafe(provider.worker_teardown(worker))
            .catch_unwind()
            .await
            .is_err()
        {
            tracing::error!("a dependency panicked in worker_teardown");
        }
    }
    result
}

async fn prepare<S: Service>(
    worker: &WorkerContext,
    providers: &[(&'static str, Arc<dyn crate::dependency::ErasedProvider>)],
) -> Result<S, RemoteError> {
    let mut values = Vec::with_capacity(providers.len());
    for (name, provider) in providers {
        let value = provider.get_dependency(worker).await.map_err(|e| {
            tracing::error!(dependency = name, error = %e, "dependency could not serve the worker");
            e.remote().clone()
        })?;
        values.push((*name, value));
    }
    for (name, provider) in providers {
        provider.worker_setup(worker).await.map_err(|e| {
            tracing::error!(dependency = name, error = %e, "dependency setup failed for the worker");
            e.remote().clone()
        })?;
    }
    S::build(DependencyValues::new(values)).map_err(|e| {
        RemoteError::new(
            "Exception",
            "builtins.Exception",
            [e.to_string()],
            e.to_string(),
        )
    })
}
