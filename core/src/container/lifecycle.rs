//! Starting, stopping and killing a container's extensions, in nameko's order.

use std::sync::Arc;

use super::{
    ContainerError, ContainerState, Inner, MethodInfo, Pending, Providers, Started, entrypoint_name,
};
use crate::dependency::ErasedProvider;
use crate::extension::{Entrypoint, EntrypointContext, Workers};
use crate::service::Service;

impl<S: Service> Inner<S> {
    pub(super) async fn start(self: Arc<Self>) -> Result<(), ContainerError> {
        let guard = self.lifecycle.lock().await;
        let pending = self
            .pending
            .lock()
            .take()
            .ok_or(ContainerError::AlreadyStarted)?;
        self.ctx.set_state(ContainerState::Starting);
        match self.clone().start_extensions(pending).await {
            Ok(()) => {
                self.ctx.set_state(ContainerState::Running);
                tracing::info!(service = S::name(), "service started");
                let inner = self.clone();
                tokio::spawn(async move {
                    let ctx = inner.ctx.clone();
                    tokio::select! {
                        () = ctx.crashed().cancelled() => {
                            let reason = ctx.crash_reason().unwrap_or_default();
                            inner.kill(ContainerState::Crashed(reason)).await;
                        }
                        // Killed from outside (a test cluster dropped mid-test): finish
                        // the kill so the state says so. A graceful stop that cancels
                        // this token at its end is already finished by then.
                        () = ctx.killed().cancelled() => inner.kill(ContainerState::Killed).await,
                    }
                });
                Ok(())
            }
            Err(error) => {
                // `kill` takes the lifecycle lock itself.
                drop(guard);
                self.ctx.crash(error.to_string());
                self.kill(ContainerState::Crashed(error.to_string())).await;
                Err(error)
            }
        }
    }

    /// Sets up entrypoints (which register with their shared extensions), then
    /// dependency providers; starts the providers, then the shared extensions, then the
    /// entrypoints.
    async fn start_extensions(self: Arc<Self>, pending: Pending) -> Result<(), ContainerError> {
        let Pending {
            providers,
            entrypoints,
        } = pending;
        let mut methods: Vec<MethodInfo> = Vec::new();
        for def in &entrypoints {
            match methods.iter_mut().find(|m| m.name == def.name()) {
                Some(info) => info
                    .expected_exceptions
                    .extend(def.expected_exceptions.iter().copied()),
                None => methods.push(MethodInfo {
                    name: def.name(),
                    shared_name: Arc::from(def.name()),
                    expected_exceptions: def.expected_exceptions.clone(),
                }),
            }
        }
        let _ = self.methods.set(methods);
        let workers = Workers::new(self.clone());
        let mut ready_entrypoints: Vec<(String, Box<dyn Entrypoint>)> = Vec::new();
        for mut def in entrypoints {
            let name = entrypoint_name(&def);
            let ctx =
                EntrypointContext::new(def.method, workers.for_entrypoint(def.entrypoint.kind()))
                    .with_expected_exceptions(def.expected_exceptions.clone());
            def.entrypoint
                .setup(&ctx)
                .await
                .map_err(|e| ContainerError::extension(name.clone(), e))?;
            ready_entrypoints.push((name, def.entrypoint));
        }
        let mut ready = Vec::with_capacity(providers.len());
        for mut slot in providers {
            slot.provider
                .setup(&self.ctx)
                .await
                .map_err(|error| ContainerError::Provider {
                    name: slot.name.to_owned(),
                    error,
                })?;
            ready.push((slot.name, Arc::<dyn ErasedProvider>::from(slot.provider)));
        }
        let providers: Providers = ready.into();
        let _ = self.providers.set(providers.clone());
        *self.started.lock().await = Some(Started {
            providers: providers.clone(),
            entrypoints: ready_entrypoints,
        });
        for (name, provider) in providers.iter() {
            provider
                .start()
                .await
                .map_err(|error| ContainerError::Provider {
                    name: (*name).to_owned(),
                    error,
                })?;
        }
        self.ctx
            .acquire_shared()
            .await
            .map_err(|(name, e)| ContainerError::extension(name, e))?;
        let started = self.started.lock().await;
        if let Some(started) = &*started {
            for (name, entrypoint) in &started.entrypoints {
                entrypoint
                    .start()
                    .await
                    .map_err(|e| ContainerError::extension(name.clone(), e))?;
            }
        }
        Ok(())
    }

    pub(super) async fn stop(self: &Arc<Self>) -> Result<(), ContainerError> {
        let _guard = self.lifecycle.lock().await;
        match self.ctx.state() {
            ContainerState::Created => {
                self.pending.lock().take();
                self.ctx.set_state(ContainerState::Stopped);
                return Ok(());
            }
            ContainerState::Crashed(reason) => return Err(ContainerError::Crashed(reason)),
            ContainerState::Stopped | ContainerState::Killed => return Ok(()),
            _ => {}
        }
        self.ctx.set_state(ContainerState::Stopping);
        tracing::info!(service = S::name(), "stopping service");
        self.ctx.stopping().cancel();
        let started = self.started.lock().await.take();
        if let Some(started) = &started {
            for (_, entrypoint) in &started.entrypoints {
                entrypoint.stop().await;
            }
        }
        self.ctx.stop_shared().await;
        self.workers.close();
        if tokio::time::timeout(self.shutdown_timeout, self.workers.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                service = S::name(),
                running = self.workers.len(),
                timeout = ?self.shutdown_timeout,
                "workers still running at the shutdown deadline; killing them (the broker redelivers their messages)"
            );
            self.ctx.killed().cancel();
            self.workers.wait().await;
        }
        if let Some(started) = started {
            for (_, provider) in started.providers.iter() {
                provider.stop().await;
            }
            for (_, entrypoint) in &started.entrypoints {
                entrypoint.close().await;
            }
        }
        self.ctx.release_shared().await;
        self.ctx.killed().cancel();
        if let Some(reason) = self.ctx.crash_reason() {
            self.ctx.set_state(ContainerState::Crashed(reason.clone()));
            return Err(ContainerError::Crashed(reason));
        }
        self.ctx.set_state(ContainerState::Stopped);
        tracing::info!(service = S::name(), "service stopped");
        Ok(())
    }

    pub(super) async fn kill(self: &Arc<Self>, final_state: ContainerState) {
        self.ctx.stopping().cancel();
        self.ctx.killed().cancel();
        let _guard = self.lifecycle.lock().await;
        if self.ctx.state().is_finished() {
            return;
        }
        self.pending.lock().take();
        let started = self.started.lock().await.take();
        if let Some(started) = started {
            for (_, entrypoint) in &started.entrypoints {
                entrypoint.kill().await;
            }
            self.workers.close();
            self.workers.wait().await;
            for (_, provider) in started.providers.iter() {
                provider.kill().await;
            }
        }
        self.ctx.kill_shared().await;
        tracing::warn!(service = S::name(), state = ?final_state, "service killed");
        self.ctx.set_state(final_state);
    }

    pub(super) fn method_names(&self) -> Vec<&'static str> {
        self.methods
            .get()
            .map(|methods| methods.iter().map(|m| m.name).collect())
            .unwrap_or_default()
    }
}
