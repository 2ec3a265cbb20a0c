//! Turns a service's entrypoint definitions into running drivers.

use std::sync::Arc;

use async_trait::async_trait;

use crate::consumer_loop::BackgroundTask;
use crate::container::{ContainerContext, ContainerError, Driver, Spawner};
use crate::context::ContextData;
use crate::entrypoint::EntrypointKind;
use crate::queue_driver::{QueueDriver, QueueSource};
use crate::rpc::RpcDriver;
use crate::service::EntrypointDef;
use crate::wire::CallArgs;

/// One driver for all RPC methods (they share `rpc-<service>`), one per other
/// entrypoint; `dummy` entrypoints have none (only hooks fire them).
pub(crate) fn build(
    entrypoints: &[EntrypointDef],
    _ctx: &ContainerContext,
) -> Result<Vec<Box<dyn Driver>>, ContainerError> {
    let mut drivers: Vec<Box<dyn Driver>> = Vec::new();
    let rpc: Vec<&'static str> = entrypoints
        .iter()
        .filter(|e| matches!(e.kind, EntrypointKind::Rpc))
        .map(|e| e.name)
        .collect();
    if !rpc.is_empty() {
        drivers.push(Box::new(RpcDriver::new(rpc)));
    }
    for ep in entrypoints {
        match &ep.kind {
            EntrypointKind::Rpc | EntrypointKind::Dummy => {}
            EntrypointKind::Once(args) => {
                drivers.push(Box::new(OnceDriver::new(ep.name, args.clone())))
            }
            EntrypointKind::EventHandler(config) => drivers.push(Box::new(QueueDriver::new(
                ep.name,
                QueueSource::Event(config.clone()),
            ))),
            EntrypointKind::Timer(config) => {
                drivers.push(Box::new(crate::timer::TimerDriver::new(ep.name, *config)))
            }
            EntrypointKind::Consume(config) => drivers.push(Box::new(QueueDriver::new(
                ep.name,
                QueueSource::Consume(config.clone()),
            ))),
        }
    }
    Ok(drivers)
}

/// Fires one worker when the container starts (nameko's `once`).
struct OnceDriver {
    name: &'static str,
    args: CallArgs,
    task: BackgroundTask,
}

impl OnceDriver {
    fn new(name: &'static str, args: CallArgs) -> Self {
        Self {
            name,
            args,
            task: BackgroundTask::default(),
        }
    }
}

#[async_trait]
impl Driver for OnceDriver {
    async fn setup(&mut self, _ctx: &ContainerContext) -> Result<(), ContainerError> {
        Ok(())
    }

    async fn start(&self, spawner: Arc<dyn Spawner>) -> Result<(), ContainerError> {
        let call = spawner.bind(self.name, self.args.clone()).map_err(|e| {
            ContainerError::Definition(format!(
                "`once` entrypoint `{}` has arguments that do not fit: {e}",
                self.name
            ))
        })?;
        self.task.spawn(async move {
            if let Ok(slot) = spawner.worker_slot().await {
                spawner.spawn(slot, call, ContextData::new(), &[], None);
            }
        });
        Ok(())
    }

    async fn stop(&self) {
        self.task.finish().await;
    }

    async fn close(&self) {}

    async fn kill(&self) {
        self.task.abort().await;
    }
}
