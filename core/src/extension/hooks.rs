//! Container hooks: code every container of a process runs as it starts.

use std::fmt;
use std::sync::Arc;

use super::{ContainerContext, ExtensionError};

type Hook = Arc<dyn Fn(&ContainerContext) -> Result<(), ExtensionError> + Send + Sync>;

/// Code every container runs when it starts, before its entrypoints and dependencies
/// are set up: how an extension crate instruments every service of a process without a
/// field on each (metrics, traces), registering [`Observers`](super::Observers) and
/// asking for shared extensions as an extension's `setup` does.
///
/// Given like startup state, with `.with_state(hooks)` on whatever starts the services
/// (a `Cli`, a `ServiceRunner`, a `TestCluster`, a container's builder): every container
/// started there runs them, in the order they were added. A hook that fails stops its
/// container from starting.
///
/// ```
/// use nameko_core::extension::{ContainerContext, ContainerHooks, ExtensionError};
///
/// fn announce(ctx: &ContainerContext) -> Result<(), ExtensionError> {
///     tracing::info!(service = ctx.service_name(), "instrumented");
///     Ok(())
/// }
///
/// let hooks = ContainerHooks::new().with(announce);
/// assert_eq!(hooks.len(), 1);
/// ```
#[derive(Clone, Default)]
pub struct ContainerHooks {
    hooks: Vec<Hook>,
}

impl fmt::Debug for ContainerHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContainerHooks")
            .field("count", &self.hooks.len())
            .finish()
    }
}

impl ContainerHooks {
    /// No hooks.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// These hooks and `hook`.
    #[must_use]
    pub fn with(
        mut self,
        hook: impl Fn(&ContainerContext) -> Result<(), ExtensionError> + Send + Sync + 'static,
    ) -> Self {
        self.hooks.push(Arc::new(hook));
        self
    }

    /// The number of hooks.
    #[must_use]
    pub fn len(&self) -> usize {
        self.hooks.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// Runs every hook on `ctx`, stopping at the first that fails.
    ///
    /// # Errors
    ///
    /// The first hook's error.
    pub fn run(&self, ctx: &ContainerContext) -> Result<(), ExtensionError> {
        self.hooks.iter().try_for_each(|hook| hook(ctx))
    }
}
