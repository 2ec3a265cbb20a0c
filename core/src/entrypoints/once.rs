//! The test entrypoints of nameko's `testing.services`: `once` fires a single time at
//! container start; `dummy` fires only when a test calls it.

use async_trait::async_trait;

use super::consumer::BackgroundTask;
use crate::context::ContextData;
use crate::extension::{
    DescribeContext, Description, Entrypoint, EntrypointContext, ExtensionError,
};
use crate::wire::CallArgs;

/// Runs its method once when the container starts, with these arguments (nameko's
/// `testing.services.once`).
#[derive(Debug)]
pub struct Once {
    args: CallArgs,
    ctx: Option<EntrypointContext>,
    task: BackgroundTask,
}

impl Once {
    /// Fires once with `args`.
    #[must_use]
    pub fn new(args: CallArgs) -> Self {
        Self {
            args,
            ctx: None,
            task: BackgroundTask::default(),
        }
    }
}

#[async_trait]
impl Entrypoint for Once {
    fn kind(&self) -> &'static str {
        "once"
    }

    /// Takes no messages: fires once.
    fn describe(&self, _ctx: &DescribeContext<'_>) -> Description {
        Description::not_messaging("once, when the container starts")
    }

    async fn setup(&mut self, ctx: &EntrypointContext) -> Result<(), ExtensionError> {
        self.ctx = Some(ctx.clone());
        Ok(())
    }

    async fn start(&self) -> Result<(), ExtensionError> {
        let Some(ctx) = self.ctx.clone() else {
            return Err(ExtensionError::msg("`once` started before setup"));
        };
        let workers = ctx.workers().clone();
        let call = workers
            .bind(ctx.method().name, self.args.clone())
            .map_err(|e| {
                ExtensionError::definition(format!(
                    "`once` entrypoint `{}` has arguments that do not fit: {e}",
                    ctx.method().name
                ))
            })?;
        self.task.spawn(async move {
            if let Ok(slot) = workers.slot().await {
                let worker = workers.start(slot, call, ContextData::new(), &[]);
                workers.spawn(worker, |worker| async move {
                    worker.run().await.finish().await;
                });
            }
        });
        Ok(())
    }

    async fn stop(&self) {
        self.task.finish().await;
    }

    async fn kill(&self) {
        self.task.abort().await;
    }
}

/// Fires only when a test calls it through an entrypoint hook (nameko's
/// `testing.services.dummy`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Dummy;

#[async_trait]
impl Entrypoint for Dummy {
    fn kind(&self) -> &'static str {
        "dummy"
    }

    /// Takes no messages: only tests fire it.
    fn describe(&self, _ctx: &DescribeContext<'_>) -> Description {
        Description::not_messaging("only from tests, through an entrypoint hook")
    }

    async fn setup(&mut self, _ctx: &EntrypointContext) -> Result<(), ExtensionError> {
        Ok(())
    }
}
