//! RPC proxies: calling a service's methods.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;
use tracing::Instrument;

use super::reply::{PendingReply, ReplyListener};
use super::waiting::CorrelationId;
use crate::config::RetryPolicy;
use crate::dependency::{Dependency, DependencyProvider, ProviderError};
use crate::errors::RpcError;
use crate::extension::instrumentation::{self, Outcome, Outgoing, Traced};
use crate::extension::{
    CallOutcome, ContainerContext, ExtensionError, Observers, OutgoingCall, SharedExtension,
};
use crate::publish::publish_made_with_retry;
use crate::transport::{
    FieldTable, Message, Properties, PublishOptions, PublishOutcome, Transport,
};
use crate::wire::CallArgs;
use crate::worker::WorkerContext;

/// Arguments of a call: `()`, a tuple of positional arguments, or [`CallArgs`] for
/// keyword arguments.
///
/// ```
/// use nameko_core::rpc::IntoArgs;
/// use nameko_core::wire::CallArgs;
///
/// assert_eq!((1, "two").into_args().unwrap(), CallArgs::new().arg(1).arg("two"));
/// assert_eq!(().into_args().unwrap(), CallArgs::new());
/// ```
pub trait IntoArgs {
    /// The arguments as nameko sends them.
    ///
    /// # Errors
    ///
    /// If an argument cannot be converted to JSON.
    fn into_args(self) -> Result<CallArgs, serde_json::Error>;
}

impl IntoArgs for CallArgs {
    fn into_args(self) -> Result<CallArgs, serde_json::Error> {
        Ok(self)
    }
}

impl IntoArgs for () {
    fn into_args(self) -> Result<CallArgs, serde_json::Error> {
        Ok(CallArgs::new())
    }
}

macro_rules! tuple_args {
    ($($name:ident)+) => {
        impl<$($name: Serialize),+> IntoArgs for ($($name,)+) {
            #[allow(non_snake_case)]
            fn into_args(self) -> Result<CallArgs, serde_json::Error> {
                let ($($name,)+) = self;
                Ok(CallArgs::positional(vec![$(serde_json::to_value($name)?),+]))
            }
        }
    };
}

tuple_args!(A);
tuple_args!(A B);
tuple_args!(A B C);
tuple_args!(A B C D);
tuple_args!(A B C D E);
tuple_args!(A B C D E F);
tuple_args!(A B C D E F G);
tuple_args!(A B C D E F G H);
tuple_args!(A B C D E F G H I);
tuple_args!(A B C D E F G H I J);
tuple_args!(A B C D E F G H I J K);
tuple_args!(A B C D E F G H I J K L);

/// What a call can return: any type serde can deserialize (`f64`, `String`,
/// [`Value`] for any JSON, a struct deriving `Deserialize`).
///
/// Name it where the result goes (`let total: f64 = proxy.call(...).await?`) or on the
/// call (`proxy.call::<Value>(...)`); a call whose result is not used needs it too, as
/// nothing else says what the reply holds.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a result type an RPC call can return",
    label = "the result type of this call",
    note = "name the type the call returns: `let total: f64 = proxy.call(...).await?`, or `proxy.call::<Value>(...)` for any JSON",
    note = "`!` means the type was left for the compiler to guess, and nothing says what the reply holds",
    note = "a type of your own needs `#[derive(serde::Deserialize)]`"
)]
pub trait CallResult: DeserializeOwned {}

impl<T: DeserializeOwned> CallResult for T {}

/// One call, as a proxy hands it to its backend.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RpcRequest {
    /// The target service.
    pub service: Arc<str>,
    /// The method.
    pub method: String,
    /// The arguments.
    pub args: CallArgs,
    /// The headers carrying the caller's context and call id stack.
    pub headers: Arc<FieldTable>,
    /// How long the caller waits for the reply.
    pub timeout: Duration,
    /// The request's priority, for a service whose queue has `x-max-priority`.
    pub priority: Option<u8>,
}

/// Where a proxy's calls go: the broker, or a test double.
#[async_trait]
pub trait RpcBackend: Send + Sync + fmt::Debug + 'static {
    /// Sends a request; resolves once the broker took it (or refused it).
    ///
    /// # Errors
    ///
    /// [`RpcError::UnknownService`] when no queue is bound for the service, transport
    /// errors, and whatever a test double scripts.
    async fn send(&self, request: RpcRequest) -> Result<PendingReply, RpcError>;

    /// Who is told how each call through this backend ended: the observers of the
    /// container whose proxies use it ([`ContainerContext::observers`]). None by
    /// default.
    fn observers(&self) -> Option<&Observers> {
        None
    }
}

/// Sends requests over a transport and waits for replies on a [`ReplyListener`].
#[derive(Debug)]
pub(crate) struct LiveBackend {
    pub(crate) transport: Arc<dyn Transport>,
    pub(crate) exchange: String,
    pub(crate) listener: Arc<ReplyListener>,
    pub(crate) retry: RetryPolicy,
    pub(crate) observers: Option<Observers>,
}

#[async_trait]
impl RpcBackend for LiveBackend {
    fn observers(&self) -> Option<&Observers> {
        self.observers.as_ref()
    }

    async fn send(&self, request: RpcRequest) -> Result<PendingReply, RpcError> {
        let deadline = Instant::now() + request.timeout;
        let body = request
            .args
            .to_body_bytes()
            .map_err(|e| RpcError::InvalidArguments(e.to_string()))?;
        let correlation_id = CorrelationId::uuid(uuid::Uuid::new_v4());
        // Waits only while the listener moves to a fresh reply queue.
        let Ok((queue, rx)) =
            tokio::time::timeout_at(deadline, self.listener.register_id(correlation_id.clone()))
                .await
        else {
            return Err(RpcError::Timeout(request.timeout));
        };
        // Made before publishing, so that an abandoned call forgets its registration.
        let pending = PendingReply::waiting_id(
            self.listener.clone(),
            correlation_id,
            rx,
            deadline,
            request.timeout,
        );
        let correlation_id = pending.correlation_id().unwrap_or_default();
        let reply_to = queue.routing_key.as_str();
        let mut routing_key =
            String::with_capacity(request.service.len() + 1 + request.method.len());
        routing_key.push_str(&request.service);
        routing_key.push('.');
        routing_key.push_str(&request.method);
        let message = || {
            let mut properties = Properties::json()
                .with_correlation_id(correlation_id)
                .with_reply_to(reply_to);
            properties.headers = FieldTable::clone(&request.headers);
            if let Some(priority) = request.priority {
                properties.priority = Some(priority);
            }
            Message::new(body.clone(), properties)
        };
        let publish = publish_made_with_retry(
            self.transport.as_ref(),
            &self.exchange,
            &routing_key,
            message,
            PublishOptions::default().with_mandatory(true),
            &self.retry,
            Some(deadline),
        );
        let outcome = tokio::time::timeout_at(deadline, publish).await;
        match outcome {
            Err(_) => Err(RpcError::Timeout(request.timeout)),
            Ok(Err(error)) => Err(RpcError::Transport(error)),
            Ok(Ok(PublishOutcome::Returned { .. })) => {
                Err(RpcError::UnknownService(request.service.to_string()))
            }
            Ok(Ok(PublishOutcome::Nacked)) => Err(RpcError::Refused),
            Ok(Ok(_)) => Ok(pending),
        }
    }
}

/// A call in flight; [`RpcReply::result`] waits for its result.
#[derive(Debug)]
#[must_use = "the reply is lost unless its result is awaited"]
pub struct RpcReply<R = Value> {
    pending: PendingReply,
    observed: Option<Box<Observed>>,
    traced: Option<Traced>,
    _result: PhantomData<fn() -> R>,
}

/// A call whose end its backend's observers are told of.
#[derive(Debug)]
struct Observed {
    observers: Observers,
    service: Arc<str>,
    method: String,
    started: Instant,
}

impl Observed {
    fn report<T>(&self, result: &Result<T, RpcError>) {
        self.observers.call_finished(&OutgoingCall::new(
            &self.service,
            &self.method,
            CallOutcome::of(result),
            self.started.elapsed(),
        ));
    }
}

impl<R: CallResult> RpcReply<R> {
    /// Waits for the reply (until the call's timeout) and converts its result.
    ///
    /// # Errors
    ///
    /// The remote error ([`RpcError::Remote`], a typed nameko error, or a registered
    /// user error), [`RpcError::Timeout`], or [`RpcError::InvalidReply`] if the result
    /// does not convert to `R`.
    pub async fn result(self) -> Result<R, RpcError> {
        let result = match &self.traced {
            None => self.pending.wait_for().await,
            Some(traced) => {
                self.pending
                    .wait_for()
                    .instrument(traced.span().clone())
                    .await
            }
        };
        if let Some(traced) = self.traced {
            traced.end(Outcome::of_rpc(&result));
        }
        if let Some(observed) = &self.observed {
            observed.report(&result);
        }
        result
    }

    /// The request's correlation id (none for test doubles).
    #[must_use]
    pub fn correlation_id(&self) -> Option<&str> {
        self.pending.correlation_id()
    }
}

/// A proxy to one service: nameko's `RpcProxy` (inside services) and
/// `ServiceRpcProxy` (outside them).
///
/// Inside a worker it carries the worker's context data and call id stack to the callee.
/// Every call has a timeout: `RPC_TIMEOUT` from the config (30 s by default), or what
/// [`RpcProxy::with_timeout`] sets.
///
/// ```no_run
/// # async fn f(calculator: nameko_core::rpc::RpcProxy) -> Result<(), nameko_core::errors::RpcError> {
/// let product: f64 = calculator.call("multiply", (6.0, 7.0)).await?;
/// let pending = calculator.call_async::<f64>("add", (product, 1.0)).await?;
/// let sum = pending.result().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RpcProxy {
    backend: Arc<dyn RpcBackend>,
    service: Arc<str>,
    headers: Arc<FieldTable>,
    timeout: Duration,
    priority: Option<u8>,
}

impl fmt::Debug for RpcProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcProxy")
            .field("service", &self.service)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RpcProxy {
    /// A proxy to `service` through `backend`, sending `headers` with every call.
    #[must_use]
    pub fn new(
        backend: Arc<dyn RpcBackend>,
        service: impl Into<Arc<str>>,
        headers: Arc<FieldTable>,
        timeout: Duration,
    ) -> Self {
        Self {
            backend,
            service: service.into(),
            headers,
            timeout,
            priority: None,
        }
    }

    /// The same proxy sending its calls with `priority`: they overtake calls of lower
    /// priority waiting in a service queue declared with `x-max-priority` (on other
    /// queues priority has no effect).
    #[must_use]
    pub fn with_priority(&self, priority: u8) -> Self {
        Self {
            priority: Some(priority),
            ..self.clone()
        }
    }

    /// The target service's name.
    #[must_use]
    pub fn service_name(&self) -> &str {
        &self.service
    }

    /// The timeout of this proxy's calls.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The same proxy with another timeout, e.g. for one call:
    /// `proxy.with_timeout(Duration::from_secs(1)).call("slow", ()).await`.
    #[must_use]
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        Self {
            timeout,
            ..self.clone()
        }
    }

    /// The same backend and context, to another service.
    #[must_use]
    pub fn to_service(&self, service: impl Into<Arc<str>>) -> Self {
        Self {
            service: service.into(),
            ..self.clone()
        }
    }

    /// A typed client of its service, on the same backend and context (see
    /// [`ClusterRpcProxy::client`](super::ClusterRpcProxy::client)).
    #[must_use]
    pub fn client<C: super::Client>(&self) -> C {
        C::from_proxy(self.to_service(C::SERVICE))
    }

    /// The headers sent with every call.
    #[must_use]
    pub fn headers(&self) -> &Arc<FieldTable> {
        &self.headers
    }

    /// Calls `method` and waits for its result.
    ///
    /// # Errors
    ///
    /// See [`RpcReply::result`] and [`RpcProxy::call_async`].
    pub async fn call<R: CallResult>(
        &self,
        method: &str,
        args: impl IntoArgs,
    ) -> Result<R, RpcError> {
        self.call_async::<R>(method, args).await?.result().await
    }

    /// Sends a call and returns at once with a handle to its result; many calls can be in
    /// flight together.
    ///
    /// # Errors
    ///
    /// [`RpcError::UnknownService`] if no queue is bound for the service,
    /// [`RpcError::InvalidArguments`], and transport errors.
    pub async fn call_async<R: CallResult>(
        &self,
        method: &str,
        args: impl IntoArgs,
    ) -> Result<RpcReply<R>, RpcError> {
        let observed = self
            .backend
            .observers()
            .filter(|observers| !observers.is_empty())
            .map(|observers| {
                Box::new(Observed {
                    observers: observers.clone(),
                    service: self.service.clone(),
                    method: method.to_owned(),
                    started: Instant::now(),
                })
            });
        let (headers, traced) = instrumentation::begin(
            &Outgoing::RpcRequest {
                service: &self.service,
                method,
            },
            &self.headers,
        );
        let sent = match args.into_args() {
            Ok(args) => {
                let send = self.backend.send(RpcRequest {
                    service: self.service.clone(),
                    method: method.to_owned(),
                    args,
                    headers,
                    timeout: self.timeout,
                    priority: self.priority,
                });
                match &traced {
                    None => send.await,
                    Some(traced) => send.instrument(traced.span().clone()).await,
                }
            }
            Err(error) => Err(RpcError::InvalidArguments(error.to_string())),
        };
        match sent {
            Ok(pending) => Ok(RpcReply {
                pending,
                observed,
                traced,
                _result: PhantomData,
            }),
            Err(error) => {
                if let Some(traced) = traced {
                    traced.end(Outcome::of_rpc_error(&error));
                }
                let error = Err(error);
                if let Some(observed) = &observed {
                    observed.report(&error);
                }
                error
            }
        }
    }
}

/// Provides an [`RpcProxy`] to one service, using the container's shared reply queue.
#[derive(Debug)]
pub struct RpcProxyProvider {
    service: Arc<str>,
    backend: Option<Arc<LiveBackend>>,
    timeout: Option<Duration>,
    config_timeout: Duration,
}

impl RpcProxyProvider {
    /// A provider of proxies to `service`.
    #[must_use]
    pub fn new(service: impl Into<Arc<str>>) -> Self {
        Self {
            service: service.into(),
            backend: None,
            timeout: None,
            config_timeout: Duration::from_secs(30),
        }
    }

    /// Sets a timeout for this dependency's calls, overriding `RPC_TIMEOUT`.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

#[async_trait]
impl SharedExtension for LiveBackend {
    async fn start(&self) -> Result<(), ExtensionError> {
        self.listener
            .start()
            .await
            .map_err(|e| ExtensionError::transport("starting the reply queue", e))
    }

    async fn close(&self) {
        self.listener.stop().await;
    }

    async fn kill(&self) {
        self.listener.stop().await;
    }
}

/// The container's shared RPC backend and reply queue.
pub(crate) fn shared_backend(ctx: &ContainerContext) -> Arc<LiveBackend> {
    let settings = ctx.settings();
    let exchange = settings.rpc_exchange.clone();
    let retry = settings.rpc_retry_policy;
    let max_size = settings.max_message_size;
    let transport = ctx.transport().clone();
    let service = ctx.service_name();
    ctx.shared("", || {
        let listener = Arc::new(ReplyListener::new(
            transport.clone(),
            exchange.clone(),
            service,
            max_size,
        ));
        LiveBackend {
            transport,
            exchange,
            listener,
            retry,
            observers: Some(ctx.observers().clone()),
        }
    })
}

impl DependencyProvider for RpcProxyProvider {
    type Output = RpcProxy;

    async fn setup(&mut self, container: &ContainerContext) -> Result<(), ProviderError> {
        self.config_timeout = container.settings().rpc_timeout;
        self.backend = Some(shared_backend(container));
        Ok(())
    }

    async fn get_dependency(&self, worker: &WorkerContext) -> Result<RpcProxy, ProviderError> {
        let backend = self
            .backend
            .clone()
            .ok_or_else(|| ProviderError::new("RPC proxy used before its container started"))?;
        let timeout = self.timeout.unwrap_or(self.config_timeout);
        Ok(RpcProxy::new(
            backend,
            self.service.clone(),
            worker.outgoing_headers().clone(),
            timeout,
        ))
    }
}

impl Dependency for RpcProxy {
    type Provider = RpcProxyProvider;

    /// A proxy to the service named like the field.
    fn provider(field: &'static str) -> RpcProxyProvider {
        RpcProxyProvider::new(field)
    }
}
