//! Test doubles of RPC proxies: [`CallRecorder`], the recording backend that answers
//! calls with scripted functions, shared by the scripted backend of the generated
//! `<Type>ClientMock` (from `#[service]` and `#[nameko::client]`) and by the testing
//! toolkit's `RpcProxyMock`.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::client::{Client, ExpectedError};
use super::proxy::{IntoArgs, RpcBackend, RpcProxy, RpcRequest};
use super::reply::PendingReply;
use crate::context::ContextData;
use crate::dependency::{BoxedProvider, DependencyProvider, ProviderError};
use crate::errors::RpcError;
use crate::transport::FieldTable;
use crate::wire::CallArgs;
use crate::worker::WorkerContext;

type Responder = Arc<dyn Fn(&CallArgs) -> Result<Value, RpcError> + Send + Sync>;

/// A call a [`CallRecorder`] (a [`ScriptedBackend`], an `RpcProxyMock`) received.
///
/// Shown as `service.method(args, key=value)`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ScriptedCall {
    /// The service called.
    pub service: String,
    /// The method called.
    pub method: String,
    /// The arguments (a typed client sends keyword arguments).
    pub args: CallArgs,
    /// The caller's context data.
    pub context: ContextData,
    /// The caller's call id stack.
    pub call_id_stack: Vec<String>,
}

impl ScriptedCall {
    /// The argument called `name` (given by keyword, or at `position`), as a `T`.
    ///
    /// # Errors
    ///
    /// [`RpcError::IncorrectSignature`] when the call did not give it, a
    /// [`RpcError::InvalidArguments`] when it is not a `T`.
    pub fn arg<T: DeserializeOwned>(&self, position: usize, name: &str) -> Result<T, RpcError> {
        convert::arg(&self.method, &self.args, position, name)
    }
}

impl fmt::Display for ScriptedCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = self.args.args.iter().map(Value::to_string).collect();
        parts.extend(self.args.kwargs.iter().map(|(k, v)| format!("{k}={v}")));
        write!(f, "{}.{}({})", self.service, self.method, parts.join(", "))
    }
}

#[derive(Default)]
struct Script {
    replies: HashMap<String, Responder>,
    calls: Vec<ScriptedCall>,
}

/// Records every call it is sent and answers each method with a scripted function: the
/// recording [`RpcBackend`] behind [`ScriptedBackend`] and the testing toolkit's
/// `RpcProxyMock`.
///
/// A method with nothing scripted answers `null`; a caller expecting a result that `null`
/// does not fit gets [`RpcError::InvalidReply`] with the recorder's hint on how to script
/// one.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// use nameko_core::errors::RpcError;
/// use nameko_core::rpc::{CallRecorder, RpcProxy};
///
/// let recorder = Arc::new(CallRecorder::new(|service, method| {
///     format!("nothing scripted for {service}.{method}")
/// }));
/// recorder.script("add", |args| Ok(serde_json::json!(args.args.len())));
/// let proxy = RpcProxy::new(recorder.clone(), "calculator", Default::default(), Duration::from_secs(1));
/// let n: usize = proxy.call("add", (1, 2)).await.unwrap();
/// assert_eq!(n, 2);
/// assert_eq!(recorder.calls()[0].to_string(), "calculator.add(1, 2)");
/// match proxy.call::<f64>("divide", (1, 0)).await {
///     Err(RpcError::InvalidReply(hint)) => assert_eq!(hint, "nothing scripted for calculator.divide"),
///     other => panic!("{other:?}"),
/// }
/// # });
/// ```
pub struct CallRecorder {
    script: Mutex<Script>,
    unscripted: fn(&str, &str) -> String,
}

impl fmt::Debug for CallRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let script = self.script.lock();
        f.debug_struct("CallRecorder")
            .field("scripted", &script.replies.keys().collect::<Vec<_>>())
            .field("calls", &script.calls.len())
            .finish()
    }
}

impl CallRecorder {
    /// A recorder with nothing scripted; `unscripted(service, method)` is what a caller
    /// is told when `null`, answered for a method with nothing scripted, does not fit.
    #[must_use]
    pub fn new(unscripted: fn(service: &str, method: &str) -> String) -> Self {
        Self {
            script: Mutex::new(Script::default()),
            unscripted,
        }
    }

    /// Calls of `method` are answered by `respond` (replacing what was scripted before).
    pub fn script(
        &self,
        method: &str,
        respond: impl Fn(&CallArgs) -> Result<Value, RpcError> + Send + Sync + 'static,
    ) {
        self.script
            .lock()
            .replies
            .insert(method.to_owned(), Arc::new(respond));
    }

    /// Every call received, in order.
    #[must_use]
    pub fn calls(&self) -> Vec<ScriptedCall> {
        self.script.lock().calls.clone()
    }

    /// The calls of one method, in order.
    #[must_use]
    pub fn calls_to(&self, method: &str) -> Vec<ScriptedCall> {
        self.script
            .lock()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    /// Forgets the recorded calls (what is scripted stays).
    pub fn reset(&self) {
        self.script.lock().calls.clear();
    }

    /// Records `request` and answers it as scripted.
    pub fn answer(&self, request: &RpcRequest) -> PendingReply {
        let (context, call_id_stack) = ContextData::from_headers(&request.headers);
        let responder = {
            let mut script = self.script.lock();
            script.calls.push(ScriptedCall {
                service: request.service.to_string(),
                method: request.method.clone(),
                args: request.args.clone(),
                context,
                call_id_stack,
            });
            script.replies.get(&request.method).cloned()
        };
        match responder {
            Some(respond) => PendingReply::ready(respond(&request.args)),
            None => PendingReply::unscripted((self.unscripted)(&request.service, &request.method)),
        }
    }
}

#[async_trait]
impl RpcBackend for CallRecorder {
    async fn send(&self, request: RpcRequest) -> Result<PendingReply, RpcError> {
        Ok(self.answer(&request))
    }
}

/// Answers calls per method with scripted functions and records them: the backend of a
/// generated client mock (`CalculatorClient::mock().multiply(|a, b| a * b)`).
///
/// A method with nothing scripted answers `null`; a caller expecting a result that
/// `null` does not fit gets [`RpcError::InvalidReply`] saying that nothing was scripted.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use nameko_core::rpc::ScriptedBackend;
///
/// let backend = ScriptedBackend::new("calculator");
/// backend.script("multiply", |args| {
///     let a: f64 = args.kwargs["a"].as_f64().unwrap_or_default();
///     Ok(serde_json::json!(a * 2.0))
/// });
/// let proxy = backend.proxy(Default::default());
/// let product: f64 = proxy
///     .call("multiply", nameko_core::wire::CallArgs::new().kwarg("a", 21.0))
///     .await
///     .unwrap();
/// assert_eq!(product, 42.0);
/// assert_eq!(backend.calls_to("multiply")[0].arg::<f64>(0, "a").unwrap(), 21.0);
/// # });
/// ```
pub struct ScriptedBackend {
    service: &'static str,
    recorder: CallRecorder,
}

impl fmt::Debug for ScriptedBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedBackend")
            .field("service", &self.service)
            .field("recorder", &self.recorder)
            .finish()
    }
}

/// What a generated client mock tells a caller of a method with nothing scripted.
fn unscripted_client(service: &str, method: &str) -> String {
    format!(
        "no reply scripted for `{method}` of `{service}`: the mock answers `null`, which is \
         not the result type asked for; script one with `<Client>::mock().{method}(|...| ...)`"
    )
}

impl ScriptedBackend {
    /// A backend standing in for `service`, with nothing scripted.
    #[must_use]
    pub fn new(service: &'static str) -> Arc<Self> {
        Arc::new(Self {
            service,
            recorder: CallRecorder::new(unscripted_client),
        })
    }

    /// The service it stands in for.
    #[must_use]
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// Calls of `method` are answered by `respond` (replacing what was scripted before).
    pub fn script(
        &self,
        method: &str,
        respond: impl Fn(&CallArgs) -> Result<Value, RpcError> + Send + Sync + 'static,
    ) {
        self.recorder.script(method, respond);
    }

    /// A proxy to the service, wired to this backend, sending `headers` (a worker's
    /// context and call id stack).
    #[must_use]
    pub fn proxy(self: &Arc<Self>, headers: Arc<FieldTable>) -> RpcProxy {
        RpcProxy::new(self.clone(), self.service, headers, Duration::from_secs(30))
    }

    /// Every call received, in order.
    #[must_use]
    pub fn calls(&self) -> Vec<ScriptedCall> {
        self.recorder.calls()
    }

    /// The calls of one method, in order.
    #[must_use]
    pub fn calls_to(&self, method: &str) -> Vec<ScriptedCall> {
        self.recorder.calls_to(method)
    }

    /// Forgets the recorded calls.
    pub fn reset(&self) {
        self.recorder.reset();
    }

    /// Asserts `method` (whose parameters are `params`) was called exactly once, with
    /// these arguments, given by position or by keyword.
    ///
    /// # Panics
    ///
    /// With the expected call and every call received, when it was not so.
    #[track_caller]
    pub fn assert_called_once_with(&self, method: &str, params: &[&str], args: impl IntoArgs) {
        let expected = by_name(
            &args
                .into_args()
                .expect("expected arguments must convert to JSON"),
            params,
        );
        let calls = self.calls_to(method);
        let ok = calls.len() == 1 && by_name(&calls[0].args, params) == expected;
        assert!(
            ok,
            "expected one call {method}({}), got {} call(s) of `{method}`; all calls: {}",
            describe(&expected),
            calls.len(),
            self.describe_calls(params),
        );
    }

    /// Asserts the last call of `method` had these arguments.
    ///
    /// # Panics
    ///
    /// With the expected call and every call received, when it was not so.
    #[track_caller]
    pub fn assert_called_with(&self, method: &str, params: &[&str], args: impl IntoArgs) {
        let expected = by_name(
            &args
                .into_args()
                .expect("expected arguments must convert to JSON"),
            params,
        );
        let last = self.calls_to(method).pop();
        assert!(
            last.as_ref()
                .is_some_and(|c| by_name(&c.args, params) == expected),
            "expected last call {method}({}); all calls: {}",
            describe(&expected),
            self.describe_calls(params),
        );
    }

    /// Asserts `method` was never called.
    ///
    /// # Panics
    ///
    /// Listing the calls, when it was.
    #[track_caller]
    pub fn assert_not_called(&self, method: &str) {
        assert!(
            self.calls_to(method).is_empty(),
            "expected no call of `{method}`; all calls: {}",
            self.describe_calls(&[]),
        );
    }

    fn describe_calls(&self, params: &[&str]) -> String {
        let calls = self.calls();
        if calls.is_empty() {
            return "no calls".to_owned();
        }
        calls
            .iter()
            .map(|c| {
                format!(
                    "\n  - {}({})",
                    c.method,
                    describe(&by_name(&c.args, params))
                )
            })
            .collect()
    }
}

/// The arguments of a call by name: positional ones named after `params`.
fn by_name(args: &CallArgs, params: &[&str]) -> serde_json::Map<String, Value> {
    let mut named = serde_json::Map::new();
    for (i, value) in args.args.iter().enumerate() {
        let name = params
            .get(i)
            .map_or_else(|| format!("#{i}"), |p| (*p).to_owned());
        named.insert(name, value.clone());
    }
    for (k, v) in &args.kwargs {
        named.insert(k.clone(), v.clone());
    }
    named
}

fn describe(named: &serde_json::Map<String, Value>) -> String {
    named
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[async_trait]
impl RpcBackend for ScriptedBackend {
    async fn send(&self, request: RpcRequest) -> Result<PendingReply, RpcError> {
        self.recorder.send(request).await
    }
}

/// A generated client mock (`CalculatorClientMock`): what the testing toolkit's
/// `worker_factory` needs to put it in a client field.
pub trait ClientDouble: Clone + fmt::Debug + Send + Sync + 'static {
    /// The client it stands in for.
    type Client: Client;

    /// The backend answering its calls.
    fn backend(&self) -> &Arc<ScriptedBackend>;

    /// A client wired to this mock, sending `headers`.
    fn client_with(&self, headers: Arc<FieldTable>) -> Self::Client {
        Self::Client::from_proxy(self.backend().proxy(headers))
    }
}

/// A typed client's entry in the process's list of clients, submitted by the generated
/// code so that test tools can make an unscripted double of any client field.
#[derive(Debug)]
pub struct ClientRegistration {
    type_id: fn() -> TypeId,
    service: &'static str,
    make: fn(RpcProxy) -> Box<dyn Any + Send>,
    provider: fn(Arc<ScriptedBackend>) -> BoxedProvider,
}

impl ClientRegistration {
    /// The registration of `C`.
    #[must_use]
    pub const fn of<C: Client>() -> Self {
        Self {
            type_id: TypeId::of::<C>,
            service: C::SERVICE,
            make: make_client::<C>,
            provider: scripted_provider::<C>,
        }
    }

    /// The service the client calls.
    #[must_use]
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// A client (boxed as `Any`) on `proxy`.
    #[must_use]
    pub fn make(&self, proxy: RpcProxy) -> Box<dyn Any + Send> {
        (self.make)(proxy)
    }

    /// A provider handing each worker a client on `backend`.
    #[must_use]
    pub fn provider(&self, backend: Arc<ScriptedBackend>) -> BoxedProvider {
        (self.provider)(backend)
    }
}

/// Hands each worker a client on a scripted backend, carrying the worker's context.
struct ScriptedClientProvider<C> {
    backend: Arc<ScriptedBackend>,
    _client: std::marker::PhantomData<fn() -> C>,
}

impl<C: Client> DependencyProvider for ScriptedClientProvider<C> {
    type Output = C;

    async fn get_dependency(&self, worker: &WorkerContext) -> Result<C, ProviderError> {
        Ok(C::from_proxy(
            self.backend.proxy(worker.outgoing_headers().clone()),
        ))
    }
}

fn scripted_provider<C: Client>(backend: Arc<ScriptedBackend>) -> BoxedProvider {
    BoxedProvider::new(ScriptedClientProvider::<C> {
        backend,
        _client: std::marker::PhantomData,
    })
}

fn make_client<C: Client>(proxy: RpcProxy) -> Box<dyn Any + Send> {
    Box::new(C::from_proxy(proxy))
}

inventory::collect!(ClientRegistration);

/// The registration of the client type `type_id`, if it is a generated client.
#[must_use]
pub fn client_registration(type_id: TypeId) -> Option<&'static ClientRegistration> {
    inventory::iter::<ClientRegistration>
        .into_iter()
        .find(|r| (r.type_id)() == type_id)
}

/// Generated mocks' conversions. Not for direct use.
#[doc(hidden)]
pub mod convert {
    use super::{CallArgs, DeserializeOwned, ExpectedError, RpcError, Serialize, Value};

    /// One argument of a scripted call, by keyword or position.
    ///
    /// # Errors
    ///
    /// When missing or not a `T`.
    pub fn arg<T: DeserializeOwned>(
        method: &str,
        args: &CallArgs,
        position: usize,
        name: &str,
    ) -> Result<T, RpcError> {
        let value = args
            .kwargs
            .get(name)
            .or_else(|| args.args.get(position))
            .ok_or_else(|| {
                RpcError::IncorrectSignature(format!(
                    "{method}() missing required argument: '{name}'"
                ))
            })?;
        T::deserialize(value).map_err(|e| {
            RpcError::InvalidArguments(format!("argument `{name}` of `{method}`: {e}"))
        })
    }

    /// A scripted plain result, as the service would reply.
    ///
    /// # Errors
    ///
    /// When it does not convert to JSON.
    pub fn value<T: Serialize>(value: T) -> Result<Value, RpcError> {
        serde_json::to_value(value).map_err(|e| RpcError::InvalidReply(e.to_string()))
    }

    /// A scripted `Result`, as the service would reply: the error as its error dict.
    ///
    /// # Errors
    ///
    /// The scripted error, as a call error.
    pub fn result<T: Serialize, E: ExpectedError>(
        outcome: Result<T, E>,
    ) -> Result<Value, RpcError> {
        match outcome {
            Ok(v) => value(v),
            Err(e) => Err(RpcError::from_remote(e.to_remote_error())),
        }
    }
}
