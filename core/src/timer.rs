//! The timer entrypoint (nameko's `@timer(interval, eager)`).
//!
//! A timer fires at `start + n * interval` (from `n = 0` when eager, `n = 1` otherwise),
//! runs one worker at a time, and when a worker overran it fires again as soon as the
//! worker finished: no drift, no overlap. It stops at once when the container stops, even
//! in the middle of a wait. Timers fire in every instance of a service.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::consumer_loop::BackgroundTask;
use crate::container::{ContainerContext, ContainerError, Driver, Spawner};
use crate::context::ContextData;
use crate::entrypoint::TimerConfig;
use crate::wire::CallArgs;

pub(crate) struct TimerDriver {
    name: &'static str,
    config: TimerConfig,
    ctx: Option<ContainerContext>,
    task: BackgroundTask,
}

impl TimerDriver {
    pub(crate) fn new(name: &'static str, config: TimerConfig) -> Self {
        Self {
            name,
            config,
            ctx: None,
            task: BackgroundTask::default(),
        }
    }
}

#[async_trait]
impl Driver for TimerDriver {
    async fn setup(&mut self, ctx: &ContainerContext) -> Result<(), ContainerError> {
        self.ctx = Some(ctx.clone());
        Ok(())
    }

    async fn start(&self, spawner: Arc<dyn Spawner>) -> Result<(), ContainerError> {
        let Some(ctx) = self.ctx.clone() else {
            return Err(ContainerError::Definition(format!(
                "timer `{}` started before setup",
                self.name
            )));
        };
        spawner.bind(self.name, CallArgs::new()).map_err(|e| {
            ContainerError::Definition(format!("timer `{}` must take no arguments: {e}", self.name))
        })?;
        let name = self.name;
        let config = self.config;
        self.task.spawn(async move {
            let start = Instant::now();
            let mut count: u32 = u32::from(!config.eager);
            loop {
                let due = start + config.interval * count;
                tokio::select! {
                    biased;
                    () = ctx.stopping().cancelled() => return,
                    () = tokio::time::sleep_until(due) => {}
                }
                let Ok(call) = spawner.bind(name, CallArgs::new()) else {
                    return;
                };
                let Ok(slot) = spawner.worker_slot().await else {
                    return;
                };
                let worker = spawner.spawn(slot, call, ContextData::new(), &[], None);
                // One worker at a time: the next tick waits for this one.
                let _ = worker.result().await;
                count = count.saturating_add(1);
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
