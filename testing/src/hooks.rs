//! `entrypoint_hook` and `entrypoint_waiter`: driving and watching a running container's
//! entrypoints from a test.

use std::fmt;
use std::time::Duration;

use nameko_core::container::{ContainerState, ErasedContainer, SpawnError};
use nameko_core::context::ContextData;
use nameko_core::errors::{RemoteError, RpcError};
use nameko_core::rpc::IntoArgs;
use nameko_core::service::BindError;
use nameko_core::worker::WorkerEvent;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::broadcast;

/// How long hooks and waiters wait by default, as nameko's do.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// An entrypoint hook call did not return a result.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum HookError {
    /// The worker failed with this error dict.
    #[error("the worker failed: {0}")]
    Failed(RemoteError),
    /// The arguments do not fit the entrypoint.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// No such entrypoint.
    #[error("the service has no entrypoint `{name}`; its entrypoints are: {known}")]
    UnknownEntrypoint {
        /// The name given.
        name: String,
        /// The entrypoints there are.
        known: String,
    },
    /// The container is not running.
    #[error("the container is not running ({0:?})")]
    NotRunning(ContainerState),
    /// The container died while the hook waited.
    #[error("the container died while the hook waited: {0:?}")]
    ContainerDied(ContainerState),
    /// No result within the timeout.
    #[error("no result from `{entrypoint}` within {timeout:?}")]
    Timeout {
        /// The entrypoint.
        entrypoint: String,
        /// How long the hook waited.
        timeout: Duration,
    },
    /// The result does not convert to the requested type.
    #[error("the result does not fit the requested type: {0}")]
    InvalidResult(String),
}

impl HookError {
    /// The failure as an RPC caller would see it, for worker failures.
    #[must_use]
    pub fn as_rpc_error(&self) -> Option<RpcError> {
        match self {
            Self::Failed(remote) => Some(RpcError::from_remote(remote.clone())),
            _ => None,
        }
    }
}

/// Calls one entrypoint of a running container through the real worker path:
/// nameko's `entrypoint_hook`.
///
/// ```no_run
/// # async fn f(container: &dyn nameko_core::container::ErasedContainer) -> Result<(), nameko_testing::HookError> {
/// use nameko_core::context::ContextData;
/// use nameko_testing::entrypoint_hook;
///
/// let sum: f64 = entrypoint_hook(container, "add")
///     .context(ContextData::new().with("user_id", 7))
///     .call_as((1.5, 2.0))
///     .await?;
/// # Ok(()) }
/// ```
pub fn entrypoint_hook<'a>(
    container: &'a dyn ErasedContainer,
    entrypoint: &str,
) -> EntrypointHook<'a> {
    EntrypointHook {
        container,
        entrypoint: entrypoint.to_owned(),
        context: ContextData::new(),
        timeout: DEFAULT_TIMEOUT,
    }
}

/// Calls one entrypoint; see [`entrypoint_hook`].
#[must_use]
pub struct EntrypointHook<'a> {
    pub(crate) container: &'a dyn ErasedContainer,
    pub(crate) entrypoint: String,
    context: ContextData,
    pub(crate) timeout: Duration,
}

impl fmt::Debug for EntrypointHook<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntrypointHook")
            .field("service", &self.container.service_name())
            .field("entrypoint", &self.entrypoint)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl EntrypointHook<'_> {
    /// The context data the worker gets.
    pub fn context(mut self, context: ContextData) -> Self {
        self.context = context;
        self
    }

    /// How long to wait for the result (30 s by default).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Runs a worker with these arguments and returns its result.
    ///
    /// # Errors
    ///
    /// See [`HookError`].
    pub async fn call(&self, args: impl IntoArgs) -> Result<Value, HookError> {
        let known = self.container.entrypoint_names();
        if !known.contains(&self.entrypoint.as_str()) {
            return Err(HookError::UnknownEntrypoint {
                name: self.entrypoint.clone(),
                known: known.join(", "),
            });
        }
        let args = args
            .into_args()
            .map_err(|e| HookError::InvalidResult(format!("arguments: {e}")))?;
        let mut state = self.container.watch_state();
        let work = async {
            let handle = self
                .container
                .spawn_worker(&self.entrypoint, args, self.context.clone())
                .await
                .map_err(|e| match e {
                    SpawnError::Bind(b) => HookError::Bind(b),
                    SpawnError::NotRunning(s) => HookError::NotRunning(s),
                    _ => HookError::ContainerDied(self.container.state()),
                })?;
            match handle.result().await {
                Ok(result) => result.map_err(HookError::Failed),
                Err(_) => Err(HookError::ContainerDied(self.container.state())),
            }
        };
        let died = async {
            let state = state
                .wait_for(ContainerState::is_finished)
                .await
                .map(|s| s.clone());
            HookError::ContainerDied(state.unwrap_or(ContainerState::Killed))
        };
        let outcome = tokio::time::timeout(self.timeout, async {
            tokio::select! {
                outcome = work => outcome,
                error = died => Err(error),
            }
        })
        .await;
        outcome.unwrap_or_else(|_| {
            Err(HookError::Timeout {
                entrypoint: self.entrypoint.clone(),
                timeout: self.timeout,
            })
        })
    }

    /// As [`EntrypointHook::call`], converting the result to `R`.
    ///
    /// # Errors
    ///
    /// See [`HookError`].
    pub async fn call_as<R: DeserializeOwned>(&self, args: impl IntoArgs) -> Result<R, HookError> {
        let value = self.call(args).await?;
        R::deserialize(&value).map_err(|e| HookError::InvalidResult(e.to_string()))
    }
}

/// An entrypoint waiter gave up.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WaiterError {
    /// No matching worker finished within the timeout.
    #[error(
        "no worker of `{entrypoint}` {matching}finished within {timeout:?}; workers that did finish: {fired}"
    )]
    Timeout {
        /// The entrypoint waited for.
        entrypoint: String,
        /// Whether a predicate was set, in words.
        matching: &'static str,
        /// How long the waiter waited.
        timeout: Duration,
        /// The workers that finished meanwhile (any entrypoint), described.
        fired: String,
    },
    /// The container died while the waiter waited.
    #[error("the container died while waiting for `{entrypoint}`: {state:?}")]
    ContainerDied {
        /// The entrypoint waited for.
        entrypoint: String,
        /// The container's final state.
        state: ContainerState,
    },
}

type Predicate = Box<dyn Fn(&WorkerEvent) -> bool + Send + Sync>;

/// Waits until a worker of an entrypoint has finished and been torn down: nameko's
/// `entrypoint_waiter`. Create it *before* triggering the entrypoint; it sees workers that
/// finish from its creation on.
///
/// ```no_run
/// # async fn f(container: &dyn nameko_core::container::ErasedContainer) -> Result<(), Box<dyn std::error::Error>> {
/// use nameko_testing::entrypoint_waiter;
/// use serde_json::json;
///
/// let waiter = entrypoint_waiter(container, "on_order_placed")
///     .matching(|worker| worker.context.args().args.first() == Some(&json!({"order_id": 7})));
/// // ... dispatch the event ...
/// let worker = waiter.wait().await?;
/// assert!(worker.result.is_ok());
/// # Ok(()) }
/// ```
pub fn entrypoint_waiter(container: &dyn ErasedContainer, entrypoint: &str) -> EntrypointWaiter {
    EntrypointWaiter {
        service: container.service_name(),
        entrypoint: entrypoint.to_owned(),
        events: container.subscribe_workers(),
        state: container.watch_state(),
        predicate: None,
        timeout: DEFAULT_TIMEOUT,
    }
}

/// Waits for a worker; see [`entrypoint_waiter`].
#[must_use]
pub struct EntrypointWaiter {
    service: &'static str,
    entrypoint: String,
    events: broadcast::Receiver<WorkerEvent>,
    state: tokio::sync::watch::Receiver<ContainerState>,
    predicate: Option<Predicate>,
    timeout: Duration,
}

impl fmt::Debug for EntrypointWaiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntrypointWaiter")
            .field("service", &self.service)
            .field("entrypoint", &self.entrypoint)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl EntrypointWaiter {
    /// Only a worker for which `predicate` holds counts (nameko's `callback`): it sees the
    /// worker's context (with its arguments) and its result.
    pub fn matching(
        mut self,
        predicate: impl Fn(&WorkerEvent) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.predicate = Some(Box::new(predicate));
        self
    }

    /// How long to wait (30 s by default).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Waits for the worker.
    ///
    /// # Errors
    ///
    /// [`WaiterError::Timeout`] listing the workers that did finish, or
    /// [`WaiterError::ContainerDied`].
    pub async fn wait(mut self) -> Result<WorkerEvent, WaiterError> {
        let mut fired: Vec<String> = Vec::new();
        let found = tokio::time::timeout(self.timeout, async {
            loop {
                tokio::select! {
                    event = self.events.recv() => match event {
                        Ok(event) => {
                            let matches_entrypoint = event.context.entrypoint() == self.entrypoint;
                            if matches_entrypoint && self.predicate.as_ref().is_none_or(|p| p(&event)) {
                                return Ok(event);
                            }
                            fired.push(describe(&event));
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => fired.push(format!("({n} workers not seen)")),
                        Err(broadcast::error::RecvError::Closed) => {
                            return Err(WaiterError::ContainerDied {
                                entrypoint: self.entrypoint.clone(),
                                state: ContainerState::Killed,
                            });
                        }
                    },
                    state = self.state.wait_for(ContainerState::is_finished) => {
                        let state = state.map(|s| s.clone()).unwrap_or(ContainerState::Killed);
                        return Err(WaiterError::ContainerDied { entrypoint: self.entrypoint.clone(), state });
                    }
                }
            }
        })
        .await;
        found.unwrap_or_else(|_| {
            Err(WaiterError::Timeout {
                entrypoint: self.entrypoint.clone(),
                matching: if self.predicate.is_some() {
                    "matching the predicate "
                } else {
                    ""
                },
                timeout: self.timeout,
                fired: if fired.is_empty() {
                    "none".to_owned()
                } else {
                    fired.join("; ")
                },
            })
        })
    }
}

fn describe(event: &WorkerEvent) -> String {
    let args = &event.context.args().args;
    let outcome = match &event.result {
        Ok(v) => format!("-> {v}"),
        Err(e) => format!("raised {} {}", e.exc_type, e.value),
    };
    format!(
        "{}({}) {outcome}",
        event.context.entrypoint(),
        args.iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}
