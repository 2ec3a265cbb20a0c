//! The timer entrypoint (nameko's `@timer(interval, eager)`).
//!
//! A timer fires at `start + n * interval` (from `n = 0` when eager, `n = 1` otherwise),
//! runs one worker at a time, and when a worker overran it fires again as soon as the
//! worker finished: no drift, no overlap. It stops at once when the container stops, even
//! in the middle of a wait. Timers fire in every instance of a service.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::consumer::BackgroundTask;
use crate::context::ContextData;
use crate::extension::{
    DescribeContext, Description, Entrypoint, EntrypointContext, ExtensionError,
};
use crate::method::Method;
use crate::wire::CallArgs;

/// Runs its method every `interval`.
///
/// ```
/// use std::time::Duration;
/// use nameko_core::entrypoints::Timer;
///
/// let timer = Timer::new(Duration::from_secs(60)).eager(true);
/// assert_eq!(timer.interval(), Duration::from_secs(60));
/// ```
#[derive(Debug)]
pub struct Timer {
    interval: Duration,
    eager: bool,
    ctx: Option<EntrypointContext>,
    task: BackgroundTask,
}

impl Timer {
    /// A timer firing every `interval`, first after one interval.
    #[must_use]
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            eager: false,
            ctx: None,
            task: BackgroundTask::default(),
        }
    }

    /// Fire once at start, before the first interval.
    #[must_use]
    pub fn eager(mut self, eager: bool) -> Self {
        self.eager = eager;
        self
    }

    /// Time between two fires.
    #[must_use]
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Whether it fires at start.
    #[must_use]
    pub fn is_eager(&self) -> bool {
        self.eager
    }
}

#[async_trait]
impl Entrypoint for Timer {
    fn kind(&self) -> &'static str {
        "timer"
    }

    /// Takes no messages: fires every interval.
    fn describe(&self, _ctx: &DescribeContext<'_>) -> Description {
        Description::not_messaging(format!(
            "every {} s{}",
            self.interval.as_secs_f64(),
            if self.eager { ", first at start" } else { "" }
        ))
    }

    fn check(&self, method: &Method) -> Result<(), ExtensionError> {
        if self.interval.is_zero() {
            return Err(ExtensionError::definition(format!(
                "timer `{}` has a zero interval",
                method.name
            )));
        }
        if !method.params.is_empty() {
            return Err(ExtensionError::definition(format!(
                "a `#[timer]` method takes no arguments besides `&self` (`{}` takes {})",
                method.name,
                method.params.len()
            )));
        }
        Ok(())
    }

    async fn setup(&mut self, ctx: &EntrypointContext) -> Result<(), ExtensionError> {
        self.ctx = Some(ctx.clone());
        Ok(())
    }

    async fn start(&self) -> Result<(), ExtensionError> {
        let Some(ctx) = self.ctx.clone() else {
            return Err(ExtensionError::msg("timer started before setup"));
        };
        let interval = self.interval;
        let eager = self.eager;
        self.task.spawn(async move {
            let workers = ctx.workers();
            let stopping = ctx.container().stopping().clone();
            let start = Instant::now();
            let mut count: u32 = u32::from(!eager);
            loop {
                let due = start + interval * count;
                tokio::select! {
                    biased;
                    () = stopping.cancelled() => return,
                    () = tokio::time::sleep_until(due) => {}
                }
                let Ok(call) = workers.bind(ctx.method().name, CallArgs::new()) else {
                    return;
                };
                let Ok(slot) = workers.slot().await else {
                    return;
                };
                // One worker at a time: the next tick waits for this one (and a stop
                // does not: the container waits for running workers).
                let worker = workers.start(slot, call, ContextData::new(), &[]);
                let (done, finished) = oneshot::channel();
                workers.spawn(worker, |worker| async move {
                    worker.run().await.finish().await;
                    let _ = done.send(());
                });
                tokio::select! {
                    biased;
                    () = stopping.cancelled() => return,
                    _ = finished => {}
                }
                count = count.saturating_add(1);
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
