//! The worker pool of a container: binding calls, worker slots, and one worker's run
//! through its dependencies.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::FutureExt;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::task::task_tracker::TaskTrackerToken;

use super::{Inner, MethodInfo};
use crate::dependency::ErasedProvider;
use crate::errors::RemoteError;
use crate::extension::instrumentation::{self, Outcome};
use crate::extension::{CallShape, ContainerContext, SpawnError, WorkerPool};
use crate::method::{BindError, Natives, Output};
use crate::service::{DependencyValues, Service};
use crate::wire::CallArgs;
use crate::worker::{WorkerContext, WorkerEvent, WorkerResult};

impl<S: Service> Inner<S> {
    /// Tells entrypoint waiters that a worker finished.
    fn tell_waiters(&self, worker: &Arc<WorkerContext>, result: &WorkerResult) {
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(WorkerEvent {
                context: worker.clone(),
                result: result.clone(),
            });
        }
    }

    fn method(&self, name: &str) -> Option<&MethodInfo> {
        self.methods.get()?.iter().find(|m| m.name == name)
    }

    fn providers(&self) -> &[(&'static str, Arc<dyn ErasedProvider>)] {
        self.providers.get().map_or(&[], |p| p)
    }
}

#[async_trait]
impl<S: Service> WorkerPool for Inner<S> {
    fn context(&self) -> &ContainerContext {
        &self.ctx
    }

    fn bind(
        &self,
        method: &str,
        args: &CallArgs,
        natives: Natives,
    ) -> Result<(CallShape, Box<dyn Any + Send>), BindError> {
        let info = self
            .method(method)
            .ok_or_else(|| BindError::MethodNotFound(method.to_owned()))?;
        let call = S::bind(method, args, natives).map_err(|error| match &info.sensitive {
            Some(paths) => redact_bind_error(info.name, paths, error),
            None => error,
        })?;
        let shape = CallShape {
            name: info.shared_name.clone(),
            params: info.params,
            sensitive: info.sensitive.clone(),
        };
        Ok((shape, Box::new(call)))
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit, SpawnError> {
        if self.ctx.killed().is_cancelled() {
            return Err(SpawnError::Killed);
        }
        tokio::select! {
            biased;
            () = self.ctx.killed().cancelled() => Err(SpawnError::Killed),
            () = self.ctx.stopping().cancelled() => Err(SpawnError::Stopping),
            permit = self.pool.clone().acquire_owned() => permit.map_err(|_| SpawnError::Killed),
        }
    }

    fn try_permit(&self) -> Option<OwnedSemaphorePermit> {
        if self.ctx.killed().is_cancelled() || self.ctx.stopping().is_cancelled() {
            return None;
        }
        self.pool.clone().try_acquire_owned().ok()
    }

    fn token(&self) -> TaskTrackerToken {
        self.workers.token()
    }

    fn parent_calls_tracked(&self) -> usize {
        self.parent_calls_tracked
    }

    async fn run(
        &self,
        worker: &WorkerContext,
        call: Box<dyn Any + Send>,
    ) -> Result<Output, RemoteError> {
        let prepared = AssertUnwindSafe(prepare::<S>(worker, self.providers()))
            .catch_unwind()
            .await;
        let result = match prepared {
            Ok(Ok(service)) => {
                let result = match call.downcast::<S::Call>() {
                    Ok(call) => {
                        match AssertUnwindSafe(service.invoke(*call)).catch_unwind().await {
                            Ok(result) => result,
                            Err(payload) => Err(panic_error(&*payload)),
                        }
                    }
                    Err(_) => Err(RemoteError::new(
                        "Exception",
                        "builtins.Exception",
                        ["bound call of another service type"],
                        "bound call of another service type",
                    )),
                };
                // The instance (and the values its dependencies gave it) lives until the
                // dependencies have seen the outcome.
                let result = complete(worker, self.providers(), result).await;
                drop(service);
                result
            }
            Ok(Err(error)) => Err(error),
            Err(payload) => Err(panic_error(&*payload)),
        };
        let expected = self
            .method(worker.entrypoint())
            .map_or(&[][..], |m| &m.expected_exceptions);
        if let Some(hooks) = instrumentation::installed() {
            let outcome = match &result {
                Ok(_) => Outcome::Ok,
                Err(e) => Outcome::Failed {
                    exc_type: &e.exc_type,
                    expected: expected.contains(&e.exc_path.as_str()),
                },
            };
            // `run` is instrumented with the worker's span.
            hooks.worker_ended(&tracing::Span::current(), worker, outcome);
        }
        match &result {
            Ok(_) => tracing::debug!("worker finished"),
            Err(e) if expected.contains(&e.exc_path.as_str()) => {
                tracing::warn!(exc_type = %e.exc_type, value = %e.value, "worker raised an expected exception");
            }
            Err(e) => {
                tracing::error!(exc_type = %e.exc_type, exc_path = %e.exc_path, value = %e.value, "worker failed");
            }
        }
        result
    }

    async fn finish(&self, worker: &Arc<WorkerContext>, result: &WorkerResult) {
        let providers = self.providers();
        for (_, provider) in providers {
            if AssertUnwindSafe(provider.worker_result(worker, result))
                .catch_unwind()
                .await
                .is_err()
            {
                tracing::error!("a dependency panicked in worker_result");
            }
        }
        self.ctx.observers().worker_finished(worker, result);
        for (_, provider) in providers {
            if AssertUnwindSafe(provider.worker_teardown(worker))
                .catch_unwind()
                .await
                .is_err()
            {
                tracing::error!("a dependency panicked in worker_teardown");
            }
        }
        self.tell_waiters(worker, result);
    }

    fn finish_now(&self, worker: &Arc<WorkerContext>, result: &WorkerResult) -> bool {
        if !self.providers().is_empty() {
            return false;
        }
        self.ctx.observers().worker_finished(worker, result);
        self.tell_waiters(worker, result);
        true
    }
}

async fn prepare<S: Service>(
    worker: &WorkerContext,
    providers: &[(&'static str, Arc<dyn ErasedProvider>)],
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

/// Lets every dependency see the method's outcome (`worker_complete`); a dependency that
/// fails after a successful method turns the result into its error.
async fn complete(
    worker: &WorkerContext,
    providers: &[(&'static str, Arc<dyn ErasedProvider>)],
    mut result: Result<Output, RemoteError>,
) -> Result<Output, RemoteError> {
    for (name, provider) in providers {
        let outcome = result.as_ref().map(|_| ());
        let completed = AssertUnwindSafe(provider.worker_complete(worker, outcome))
            .catch_unwind()
            .await;
        let error = match completed {
            Ok(Ok(())) => continue,
            Ok(Err(error)) => error.remote().clone(),
            Err(payload) => panic_error(&*payload),
        };
        match &result {
            Ok(_) => {
                tracing::error!(dependency = name, error = %error, "dependency failed the worker after its method returned");
                result = Err(error);
            }
            Err(_) => {
                tracing::error!(dependency = name, error = %error, "dependency failed after the worker failed");
            }
        }
    }
    result
}

/// A conversion error of a sensitive argument says which argument, never what it was
/// (serde's message quotes the value).
fn redact_bind_error(method: &str, paths: &[&'static str], error: BindError) -> BindError {
    let BindError::InvalidArgument(message) = &error else {
        return error;
    };
    for path in paths {
        let root = crate::sensitive::path_root(path);
        if message.starts_with(&format!("{method}() argument '{root}' ")) {
            return BindError::InvalidArgument(format!(
                "{method}() argument '{root}' has a value of the wrong type (not shown: it is sensitive)"
            ));
        }
    }
    error
}

/// The error dict a worker fails with when the service panicked.
fn panic_error(payload: &(dyn Any + Send)) -> RemoteError {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_owned());
    let message = format!("worker panicked: {message}");
    RemoteError::new(
        "WorkerPanic",
        "nameko_rs.WorkerPanic",
        [message.clone()],
        message,
    )
}
