//! The `#[cron]` entrypoint.

use std::str::FromStr;
use std::sync::Arc;

use cron::Schedule;
use nameko::extension::{
    DescribeContext, Description, Entrypoint, EntrypointContext, ExtensionError,
};
use nameko::method::Method;

use crate::scheduler::{JobId, Scheduler};

/// Runs its method on a cron schedule (`#[cron("0 */5 * * * *")]`).
///
/// The method takes no arguments, or one: the time the run was scheduled for, in RFC 3339
/// (`2026-12-06T03:00:00+00:00`).
#[derive(Debug)]
pub struct Cron {
    expression: String,
    schedule: Result<Arc<Schedule>, String>,
    registered: Option<(Arc<Scheduler>, JobId)>,
}

impl Cron {
    /// A cron entrypoint on `expression`; an invalid one is refused when the container is
    /// built.
    #[must_use]
    pub fn new(expression: &str) -> Self {
        Self {
            expression: expression.to_owned(),
            schedule: Schedule::from_str(expression)
                .map(Arc::new)
                .map_err(|e| e.to_string()),
            registered: None,
        }
    }

    /// The expression.
    #[must_use]
    pub fn expression(&self) -> &str {
        &self.expression
    }
}

#[nameko::async_trait]
impl Entrypoint for Cron {
    fn kind(&self) -> &'static str {
        "cron"
    }

    /// Takes no broker messages: the services' AsyncAPI document lists it with its
    /// schedule, without a channel.
    fn describe(&self, _ctx: &DescribeContext<'_>) -> Description {
        Description::not_messaging(format!("cron `{}`", self.expression))
    }

    fn check(&self, method: &Method) -> Result<(), ExtensionError> {
        if let Err(error) = &self.schedule {
            return Err(ExtensionError::definition(format!(
                "invalid cron expression `{}`: {error}",
                self.expression
            )));
        }
        if method.params.len() > 1 {
            return Err(ExtensionError::definition(format!(
                "a `#[cron]` method takes no argument, or one (the time it was scheduled for); `{}` takes {}",
                method.name,
                method.params.len()
            )));
        }
        Ok(())
    }

    async fn setup(&mut self, ctx: &EntrypointContext) -> Result<(), ExtensionError> {
        let schedule = self.schedule.clone().map_err(ExtensionError::definition)?;
        let scheduler = ctx.container().process_shared("", Scheduler::new);
        let id = scheduler.register(
            schedule,
            ctx.workers().clone(),
            ctx.method().name,
            !ctx.method().params.is_empty(),
        );
        self.registered = Some((scheduler, id));
        Ok(())
    }

    async fn stop(&self) {
        if let Some((scheduler, id)) = &self.registered {
            scheduler.unregister(*id);
        }
    }

    async fn kill(&self) {
        self.stop().await;
    }
}
