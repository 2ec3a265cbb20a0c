//! The entrypoint extension: what makes a worker run.

use async_trait::async_trait;

use super::{ContainerContext, DescribeContext, Description, ExtensionError, Workers};
use crate::errors::RemoteError;
use crate::method::Method;

/// One entrypoint of one service method: nameko's `Entrypoint`.
///
/// An entrypoint attribute on a method of a `#[service]` (`#[rpc]`, `#[timer(...)]`, or
/// one of another crate) builds one, and the container drives its life:
///
/// 1. [`check`](Entrypoint::check) when the container is built: does the method fit
///    (number of parameters, their names)?
/// 2. [`setup`](Entrypoint::setup): declare what it consumes, register with the shared
///    extensions it uses ([`ContainerContext::shared`]), keep the [`Workers`] handle;
/// 3. [`start`](Entrypoint::start): take work; for each piece of work, bind the call,
///    take a worker slot, run the worker, handle its result, finish it (see [`Workers`]);
/// 4. [`stop`](Entrypoint::stop): stop taking work and give back what was not started;
///    the container then waits for running workers (at most `SHUTDOWN_TIMEOUT`);
/// 5. [`close`](Entrypoint::close): release what it holds once every worker finished;
///    or [`kill`](Entrypoint::kill): stop at once.
///
/// See the [module documentation](super) for a whole entrypoint.
#[async_trait]
pub trait Entrypoint: Send + Sync + 'static {
    /// What kind of entrypoint this is, for logs and metrics (`"rpc"`, `"timer"`, ...).
    fn kind(&self) -> &'static str;

    /// Checks the method the entrypoint is attached to, when the container is built.
    ///
    /// # Errors
    ///
    /// [`ExtensionError::Definition`] saying what does not fit.
    fn check(&self, method: &Method) -> Result<(), ExtensionError> {
        let _ = method;
        Ok(())
    }

    /// Describes the messages the entrypoint takes, for documents of the service's
    /// messaging (`<service binary> asyncapi`); called on an entrypoint that was built but
    /// not set up, with the configuration the document is made for.
    ///
    /// The default says nothing ([`Description::Undescribed`]): the document lists the
    /// entrypoint by kind among those not described. An entrypoint that takes no broker
    /// messages says what fires it ([`Description::not_messaging`]); one that consumes or
    /// publishes says on which channels, and what its messages carry (see
    /// [`describe`](super::describe)).
    fn describe(&self, ctx: &DescribeContext<'_>) -> Description {
        let _ = ctx;
        Description::Undescribed
    }

    /// Prepares the entrypoint when its container starts.
    ///
    /// # Errors
    ///
    /// A failure stops the container from starting.
    async fn setup(&mut self, ctx: &EntrypointContext) -> Result<(), ExtensionError>;

    /// Starts taking work, after every extension was set up and the dependency providers
    /// and shared extensions started.
    ///
    /// # Errors
    ///
    /// A failure stops the container from starting.
    async fn start(&self) -> Result<(), ExtensionError> {
        Ok(())
    }

    /// Stops taking work and gives back what it had not started; running workers go on.
    async fn stop(&self) {}

    /// Releases what it holds (consumers, listeners), once every worker has finished.
    async fn close(&self) {}

    /// Stops at once.
    async fn kill(&self) {}
}

/// What an entrypoint gets at setup: its method, the errors its attribute declared
/// expected, and the container's [`Workers`].
#[derive(Debug, Clone)]
pub struct EntrypointContext {
    method: Method,
    workers: Workers,
    expected_exceptions: Vec<&'static str>,
}

impl EntrypointContext {
    pub(crate) fn new(method: Method, workers: Workers) -> Self {
        Self {
            method,
            workers,
            expected_exceptions: Vec::new(),
        }
    }

    pub(crate) fn with_expected_exceptions(mut self, expected: Vec<&'static str>) -> Self {
        self.expected_exceptions = expected;
        self
    }

    /// The `exc_path`s of the attribute's `expected_exceptions = [...]`: errors that are
    /// part of the method's contract (an HTTP entrypoint answers them with 400).
    #[must_use]
    pub fn expected_exceptions(&self) -> &[&'static str] {
        &self.expected_exceptions
    }

    /// Whether a worker's error is one of the attribute's expected exceptions.
    #[must_use]
    pub fn is_expected(&self, error: &RemoteError) -> bool {
        self.expected_exceptions.contains(&error.exc_path.as_str())
    }

    /// The method the entrypoint runs.
    #[must_use]
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The container's workers: how the entrypoint runs its method.
    #[must_use]
    pub fn workers(&self) -> &Workers {
        &self.workers
    }

    /// The container: service name, configuration, transport, lifecycle signals, shared
    /// extensions.
    #[must_use]
    pub fn container(&self) -> &ContainerContext {
        self.workers.container()
    }
}
