//! The extension API: what every entrypoint, dependency provider and shared extension is
//! built on (nameko's `Extension`, `Entrypoint`, `SharedExtension`, `ProviderCollector`;
//! dependency providers are in [`crate::dependency`]).
//!
//! The built-in entrypoints ([`crate::entrypoints`]: RPC, event handlers, timers, consumers,
//! `once`) use this API and nothing else, and a crate of its own adds an entrypoint kind
//! the same way:
//!
//! - an [`Entrypoint`] implementation, driven by the container through `check`, `setup`,
//!   `start`, `stop`, `close` and `kill`, which [describes](describe) the messages it
//!   takes for the service's AsyncAPI document;
//! - it runs its method through the container's [`Workers`]: bind the arguments, take a
//!   worker slot (bounded by `max_workers`), start the worker with the caller's context
//!   data and call id stack, run it, handle its result, finish it;
//! - state shared by several entrypoints or services lives in a [`SharedExtension`]
//!   (one per container, or one per process), which collects what registers with it in a
//!   [`Collector`];
//! - so that `#[service]` accepts `#[my_entrypoint(...)]` on a method, the crate exports a
//!   macro of that name whose expansion builds the entrypoint: `#[service]` turns the
//!   attribute `#[path(args)]` into the expression `path!(args)` (after taking out the
//!   arguments every entrypoint understands: `expected_exceptions = [...]` and
//!   `sensitive_arguments = [...]`).
//!
//! An entrypoint that runs its method every `period`, one worker at a time:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use nameko_core::context::ContextData;
//! use nameko_core::extension::{Entrypoint, EntrypointContext, ExtensionError};
//! use nameko_core::method::Method;
//! use nameko_core::wire::CallArgs;
//! use parking_lot::Mutex;
//! use tokio::task::JoinHandle;
//!
//! pub struct Every {
//!     period: Duration,
//!     ctx: Option<EntrypointContext>,
//!     task: Mutex<Option<JoinHandle<()>>>,
//! }
//!
//! impl Every {
//!     pub fn new(period: Duration) -> Self {
//!         Self { period, ctx: None, task: Mutex::new(None) }
//!     }
//! }
//!
//! #[async_trait::async_trait]
//! impl Entrypoint for Every {
//!     fn kind(&self) -> &'static str {
//!         "every"
//!     }
//!
//!     fn check(&self, method: &Method) -> Result<(), ExtensionError> {
//!         if method.params.is_empty() {
//!             Ok(())
//!         } else {
//!             Err(ExtensionError::definition(format!(
//!                 "`{}` runs periodically: it takes no arguments besides `&self`",
//!                 method.name
//!             )))
//!         }
//!     }
//!
//!     async fn setup(&mut self, ctx: &EntrypointContext) -> Result<(), ExtensionError> {
//!         self.ctx = Some(ctx.clone());
//!         Ok(())
//!     }
//!
//!     async fn start(&self) -> Result<(), ExtensionError> {
//!         let ctx = self.ctx.clone().ok_or_else(|| ExtensionError::msg("not set up"))?;
//!         let period = self.period;
//!         let task = tokio::spawn(async move {
//!             let workers = ctx.workers();
//!             let stopping = ctx.container().stopping().clone();
//!             loop {
//!                 tokio::select! {
//!                     () = stopping.cancelled() => return,
//!                     () = tokio::time::sleep(period) => {}
//!                 }
//!                 let Ok(call) = workers.bind(ctx.method().name, CallArgs::new()) else { return };
//!                 let Ok(slot) = workers.slot().await else { return };
//!                 let worker = workers.start(slot, call, ContextData::new(), &[]);
//!                 let run = worker.run().await;
//!                 if let Err(error) = run.result() {
//!                     tracing::warn!(%error, "periodic job failed");
//!                 }
//!                 run.finish().await;
//!             }
//!         });
//!         *self.task.lock() = Some(task);
//!         Ok(())
//!     }
//!
//!     async fn stop(&self) {
//!         let task = self.task.lock().take();
//!         if let Some(task) = task {
//!             let _ = task.await;
//!         }
//!     }
//!
//!     async fn kill(&self) {
//!         if let Some(task) = self.task.lock().take() {
//!             task.abort();
//!         }
//!     }
//! }
//!
//! /// `#[every(5)]` on a service method: runs it every 5 seconds.
//! #[macro_export]
//! macro_rules! every {
//!     ($seconds:expr) => {
//!         Every::new(Duration::from_secs($seconds))
//!     };
//! }
//! # fn main() {}
//! ```
//!
//! `examples/custom_entrypoint` in the repository is a whole crate written this way: a
//! cron entrypoint and a shared extension, with its tests.
//!
//! Crates that observe every worker and every outgoing message of a process (tracing,
//! telemetry) install an [`instrumentation::Instrumentation`].

mod context;
pub mod describe;
mod entrypoint;
mod error;
mod hooks;
pub mod instrumentation;
mod observe;
mod shared;
mod workers;

pub use context::{ContainerContext, ContainerState, IdGenerator};
pub use describe::{Action, Channel, DescribeContext, Description, Operation, Payload};
pub use entrypoint::{Entrypoint, EntrypointContext};
pub use error::ExtensionError;
pub use hooks::ContainerHooks;
pub use observe::{CallOutcome, Observer, Observers, OutgoingCall, Settlement};
pub use shared::{Collector, SharedExtension, SharedExtensions};
pub use workers::{BoundCall, SpawnError, Worker, WorkerRun, WorkerSlot, Workers};

pub(crate) use workers::{CallShape, WorkerPool};
