//! Mocks of the built-in dependencies, for unit tests with
//! [`worker_factory`](crate::worker_factory) and for containers whose dependencies are
//! replaced with [`replace_dependencies`](crate::replace_dependencies).

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nameko_core::config::Config;
use nameko_core::container::ContainerContext;
use nameko_core::context::ContextData;
use nameko_core::dependency::{BoxedProvider, DependencyProvider, ProviderError};
use nameko_core::errors::{RemoteError, RpcError};
use nameko_core::events::{EventBackend, EventDispatcher, EventError};
use nameko_core::rpc::{
    CallRecorder, ClientDouble, ClientRegistration, IntoArgs, RpcProxy, ScriptedBackend,
    ScriptedCall, client_registration,
};
use nameko_core::transport::FieldTable;
use nameko_core::wire::CallArgs;
use nameko_core::worker::WorkerContext;
use parking_lot::Mutex;
use serde::Serialize;
use serde_json::Value;

/// A stand-in for one dependency of a service.
pub trait Mock: Send + Sync + 'static {
    /// The dependency type this mock stands in for, and its name.
    fn target(&self) -> (TypeId, &'static str);

    /// A value wired to this mock, for a service built outside any worker.
    fn value(&self, field: &'static str, context: &ContextData) -> Box<dyn Any + Send>;

    /// A provider handing each worker a value wired to this mock.
    fn provider(&self, field: &'static str) -> BoxedProvider;

    /// The mock as `Any`, to get it back from [`Mocks`].
    fn as_any(&self) -> &dyn Any;

    /// The backend recording the calls of a typed client mock.
    fn scripted_backend(&self) -> Option<&Arc<ScriptedBackend>> {
        None
    }
}

fn headers_of(context: &ContextData) -> Arc<FieldTable> {
    Arc::new(context.to_headers(&[]))
}

/// A call an [`RpcProxyMock`] received: the service, method, arguments, and the caller's
/// context and call id stack (the same record as a typed client mock's).
pub type RecordedCall = ScriptedCall;

fn format_args_of(args: &CallArgs) -> String {
    let mut parts: Vec<String> = args.args.iter().map(Value::to_string).collect();
    parts.extend(args.kwargs.iter().map(|(k, v)| format!("{k}={v}")));
    parts.join(", ")
}

/// What an [`RpcProxyMock`] tells a caller of a method with nothing scripted.
fn unscripted_proxy(service: &str, method: &str) -> String {
    format!(
        "no reply scripted for `{method}` of `{service}`: the mock answers `null`, which is \
         not the result type asked for; script one with \
         `RpcProxyMock::new().reply(\"{method}\", ...)`"
    )
}

/// A scriptable stand-in for an [`RpcProxy`]: replies per method (values or errors) and
/// records every call with its arguments and its caller's context.
///
/// A method with no scripted reply returns `null`; a caller expecting a type that `null`
/// does not fit gets [`RpcError::InvalidReply`] saying ``no reply scripted for `get` ...``.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use nameko_testing::RpcProxyMock;
///
/// let calculator = RpcProxyMock::new().reply("multiply", 6.0);
/// let proxy = calculator.proxy("calculator");
/// let product: f64 = proxy.call("multiply", (2.0, 3.0)).await.unwrap();
/// assert_eq!(product, 6.0);
/// calculator.assert_called_once_with("multiply", (2.0, 3.0));
/// # });
/// ```
#[derive(Clone)]
pub struct RpcProxyMock {
    recorder: Arc<CallRecorder>,
}

impl fmt::Debug for RpcProxyMock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RpcProxyMock")
            .field("recorder", &self.recorder)
            .finish()
    }
}

impl Default for RpcProxyMock {
    fn default() -> Self {
        Self {
            recorder: Arc::new(CallRecorder::new(unscripted_proxy)),
        }
    }
}

impl RpcProxyMock {
    /// A mock with nothing scripted.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every call of `method` returns `value`.
    ///
    /// # Panics
    ///
    /// If `value` cannot be converted to JSON.
    #[must_use]
    pub fn reply(self, method: &str, value: impl Serialize) -> Self {
        let value = serde_json::to_value(value).expect("a scripted reply must convert to JSON");
        self.reply_with(method, move |_| Ok(value.clone()))
    }

    /// Every call of `method` fails with this remote error, as if the service raised it.
    #[must_use]
    pub fn fail(self, method: &str, error: RemoteError) -> Self {
        self.reply_with(method, move |_| Err(RpcError::from_remote(error.clone())))
    }

    /// Every call of `method` fails with `error` (e.g. [`RpcError::Timeout`]).
    #[must_use]
    pub fn fail_with(self, method: &str, error: RpcError) -> Self {
        self.reply_with(method, move |_| Err(error.clone()))
    }

    /// Calls of `method` are answered by `f`.
    #[must_use]
    pub fn reply_with(
        self,
        method: &str,
        f: impl Fn(&CallArgs) -> Result<Value, RpcError> + Send + Sync + 'static,
    ) -> Self {
        self.recorder.script(method, f);
        self
    }

    /// An [`RpcProxy`] to `service` wired to this mock.
    #[must_use]
    pub fn proxy(&self, service: &str) -> RpcProxy {
        self.proxy_with_headers(service, Arc::new(FieldTable::new()))
    }

    fn proxy_with_headers(&self, service: &str, headers: Arc<FieldTable>) -> RpcProxy {
        RpcProxy::new(
            self.recorder.clone(),
            service,
            headers,
            Duration::from_secs(30),
        )
    }

    /// Every call received, in order.
    #[must_use]
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.recorder.calls()
    }

    /// The calls of one method, in order.
    #[must_use]
    pub fn calls_to(&self, method: &str) -> Vec<RecordedCall> {
        self.recorder.calls_to(method)
    }

    /// Forgets the recorded calls.
    pub fn reset(&self) {
        self.recorder.reset();
    }

    fn describe_calls(&self) -> String {
        let calls = self.calls();
        if calls.is_empty() {
            return "no calls".to_owned();
        }
        calls.iter().map(|c| format!("\n  - {c}")).collect()
    }

    /// Asserts `method` was called exactly once, with exactly these arguments.
    ///
    /// # Panics
    ///
    /// With the expected call and every call received, when it was not so.
    #[track_caller]
    pub fn assert_called_once_with(&self, method: &str, args: impl IntoArgs) {
        let expected = args
            .into_args()
            .expect("expected arguments must convert to JSON");
        let calls = self.calls_to(method);
        let ok = calls.len() == 1 && calls[0].args == expected;
        assert!(
            ok,
            "expected one call {method}({}), got {} call(s) of `{method}`; all calls: {}",
            format_args_of(&expected),
            calls.len(),
            self.describe_calls()
        );
    }

    /// Asserts the last call of `method` had these arguments.
    ///
    /// # Panics
    ///
    /// With the expected call and every call received, when it was not so.
    #[track_caller]
    pub fn assert_called_with(&self, method: &str, args: impl IntoArgs) {
        let expected = args
            .into_args()
            .expect("expected arguments must convert to JSON");
        let last = self.calls_to(method).pop();
        assert!(
            last.as_ref().is_some_and(|c| c.args == expected),
            "expected last call {method}({}), got {}; all calls: {}",
            format_args_of(&expected),
            last.map_or_else(|| "none".to_owned(), |c| c.to_string()),
            self.describe_calls()
        );
    }

    /// Asserts `method` was never called.
    ///
    /// # Panics
    ///
    /// Listing the calls, when it was.
    #[track_caller]
    pub fn assert_not_called(&self, method: &str) {
        let calls = self.calls_to(method);
        assert!(
            calls.is_empty(),
            "expected no call of `{method}`; all calls: {}",
            self.describe_calls()
        );
    }
}

struct RpcMockProvider {
    mock: RpcProxyMock,
    service: &'static str,
}

impl DependencyProvider for RpcMockProvider {
    type Output = RpcProxy;

    async fn get_dependency(&self, worker: &WorkerContext) -> Result<RpcProxy, ProviderError> {
        Ok(self
            .mock
            .proxy_with_headers(self.service, worker.outgoing_headers().clone()))
    }
}

impl Mock for RpcProxyMock {
    fn target(&self) -> (TypeId, &'static str) {
        (TypeId::of::<RpcProxy>(), std::any::type_name::<RpcProxy>())
    }

    fn value(&self, field: &'static str, context: &ContextData) -> Box<dyn Any + Send> {
        Box::new(self.proxy_with_headers(field, headers_of(context)))
    }

    fn provider(&self, field: &'static str) -> BoxedProvider {
        BoxedProvider::new(RpcMockProvider {
            mock: self.clone(),
            service: field,
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Hands each worker a typed client wired to a client mock.
struct ClientMockProvider<M> {
    mock: M,
}

impl<M: ClientDouble> DependencyProvider for ClientMockProvider<M> {
    type Output = M::Client;

    async fn get_dependency(&self, worker: &WorkerContext) -> Result<M::Client, ProviderError> {
        Ok(self.mock.client_with(worker.outgoing_headers().clone()))
    }
}

/// A generated client mock (`CalculatorClient::mock()`) stands in for a field of its
/// client type.
impl<M: ClientDouble> Mock for M {
    fn target(&self) -> (TypeId, &'static str) {
        (
            TypeId::of::<M::Client>(),
            std::any::type_name::<M::Client>(),
        )
    }

    fn value(&self, _field: &'static str, context: &ContextData) -> Box<dyn Any + Send> {
        Box::new(self.client_with(headers_of(context)))
    }

    fn provider(&self, _field: &'static str) -> BoxedProvider {
        BoxedProvider::new(ClientMockProvider { mock: self.clone() })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn scripted_backend(&self) -> Option<&Arc<ScriptedBackend>> {
        Some(self.backend())
    }
}

/// The mock of a client field no test scripted: every call answers `null`.
#[derive(Clone)]
struct UnscriptedClient {
    backend: Arc<ScriptedBackend>,
    registration: &'static ClientRegistration,
    type_id: TypeId,
}

impl Mock for UnscriptedClient {
    fn target(&self) -> (TypeId, &'static str) {
        (self.type_id, "typed client")
    }

    fn value(&self, _field: &'static str, context: &ContextData) -> Box<dyn Any + Send> {
        self.registration
            .make(self.backend.proxy(headers_of(context)))
    }

    fn provider(&self, _field: &'static str) -> BoxedProvider {
        self.registration.provider(self.backend.clone())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn scripted_backend(&self) -> Option<&Arc<ScriptedBackend>> {
        Some(&self.backend)
    }
}

/// An event an [`EventDispatcherMock`] received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// The service it was dispatched as.
    pub source: String,
    /// The event type.
    pub event_type: String,
    /// The payload.
    pub payload: Value,
    /// The dispatching worker's context data.
    pub context: ContextData,
    /// The dispatching worker's call id stack.
    pub call_id_stack: Vec<String>,
}

/// A stand-in for an [`EventDispatcher`] that records every dispatch.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use nameko_testing::EventDispatcherMock;
/// use serde_json::json;
///
/// let events = EventDispatcherMock::new();
/// events.dispatcher("order_service").dispatch("order_placed", json!({"id": 1})).await.unwrap();
/// events.assert_dispatched_once("order_placed", json!({"id": 1}));
/// # });
/// ```
#[derive(Clone, Default)]
pub struct EventDispatcherMock {
    events: Arc<Mutex<Vec<RecordedEvent>>>,
    failure: Arc<Mutex<Option<EventError>>>,
}

impl fmt::Debug for EventDispatcherMock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventDispatcherMock")
            .field("events", &self.events.lock().len())
            .finish()
    }
}

impl EventDispatcherMock {
    /// A mock that accepts every event.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every dispatch fails with `error` (recorded all the same).
    #[must_use]
    pub fn failing(self, error: EventError) -> Self {
        *self.failure.lock() = Some(error);
        self
    }

    /// An [`EventDispatcher`] dispatching as `source` into this mock.
    #[must_use]
    pub fn dispatcher(&self, source: &str) -> EventDispatcher {
        EventDispatcher::new(Arc::new(self.clone()), source, Arc::new(FieldTable::new()))
    }

    /// Every event dispatched, in order.
    #[must_use]
    pub fn events(&self) -> Vec<RecordedEvent> {
        self.events.lock().clone()
    }

    /// The payloads dispatched with `event_type`, in order.
    #[must_use]
    pub fn payloads(&self, event_type: &str) -> Vec<Value> {
        self.events
            .lock()
            .iter()
            .filter(|e| e.event_type == event_type)
            .map(|e| e.payload.clone())
            .collect()
    }

    fn describe(&self) -> String {
        let events = self.events();
        if events.is_empty() {
            return "no events".to_owned();
        }
        events
            .iter()
            .map(|e| format!("\n  - {} {} {}", e.source, e.event_type, e.payload))
            .collect()
    }

    /// Asserts an event of this type with this payload was dispatched.
    ///
    /// # Panics
    ///
    /// Listing every event, when none matches.
    #[track_caller]
    pub fn assert_dispatched(&self, event_type: &str, payload: impl Serialize) {
        let payload = serde_json::to_value(payload).expect("expected payload must convert to JSON");
        assert!(
            self.payloads(event_type).contains(&payload),
            "expected event {event_type} {payload}; dispatched: {}",
            self.describe()
        );
    }

    /// Asserts exactly one event of this type was dispatched, with this payload.
    ///
    /// # Panics
    ///
    /// Listing every event, when it was not so.
    #[track_caller]
    pub fn assert_dispatched_once(&self, event_type: &str, payload: impl Serialize) {
        let payload = serde_json::to_value(payload).expect("expected payload must convert to JSON");
        let payloads = self.payloads(event_type);
        assert!(
            payloads == [payload.clone()],
            "expected exactly one event {event_type} {payload}; dispatched: {}",
            self.describe()
        );
    }

    /// Asserts nothing was dispatched.
    ///
    /// # Panics
    ///
    /// Listing every event, when something was.
    #[track_caller]
    pub fn assert_nothing_dispatched(&self) {
        assert!(
            self.events.lock().is_empty(),
            "expected no events; dispatched: {}",
            self.describe()
        );
    }
}

#[async_trait]
impl EventBackend for EventDispatcherMock {
    async fn dispatch(
        &self,
        source: &str,
        event_type: &str,
        payload: Value,
        headers: &FieldTable,
    ) -> Result<(), EventError> {
        let (context, call_id_stack) = ContextData::from_headers(headers);
        self.events.lock().push(RecordedEvent {
            source: source.to_owned(),
            event_type: event_type.to_owned(),
            payload,
            context,
            call_id_stack,
        });
        match self.failure.lock().clone() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

struct EventMockProvider {
    mock: EventDispatcherMock,
    source: Option<&'static str>,
}

impl DependencyProvider for EventMockProvider {
    type Output = EventDispatcher;

    async fn setup(&mut self, container: &ContainerContext) -> Result<(), ProviderError> {
        self.source = Some(container.service_name());
        Ok(())
    }

    async fn get_dependency(
        &self,
        worker: &WorkerContext,
    ) -> Result<EventDispatcher, ProviderError> {
        let source = self
            .source
            .unwrap_or(worker.service_name().to_owned().leak());
        Ok(EventDispatcher::new(
            Arc::new(self.mock.clone()),
            source,
            worker.outgoing_headers().clone(),
        ))
    }
}

impl Mock for EventDispatcherMock {
    fn target(&self) -> (TypeId, &'static str) {
        (
            TypeId::of::<EventDispatcher>(),
            std::any::type_name::<EventDispatcher>(),
        )
    }

    fn value(&self, _field: &'static str, context: &ContextData) -> Box<dyn Any + Send> {
        Box::new(EventDispatcher::new(
            Arc::new(self.clone()),
            "service",
            headers_of(context),
        ))
    }

    fn provider(&self, _field: &'static str) -> BoxedProvider {
        BoxedProvider::new(EventMockProvider {
            mock: self.clone(),
            source: None,
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The mock a dependency type gets when a test does not supply one, if it has one.
pub(crate) fn default_mock(type_id: TypeId) -> Option<Box<dyn Mock>> {
    if type_id == TypeId::of::<RpcProxy>() {
        Some(Box::new(RpcProxyMock::new()))
    } else if type_id == TypeId::of::<EventDispatcher>() {
        Some(Box::new(EventDispatcherMock::new()))
    } else {
        let registration = client_registration(type_id)?;
        Some(Box::new(UnscriptedClient {
            backend: ScriptedBackend::new(registration.service()),
            registration,
            type_id,
        }))
    }
}

/// A plain value for dependency types that need no mock: context data, configuration.
pub(crate) fn default_value(type_id: TypeId, context: &ContextData) -> Option<Box<dyn Any + Send>> {
    if type_id == TypeId::of::<ContextData>() {
        Some(Box::new(context.clone()))
    } else if type_id == TypeId::of::<Arc<Config>>() {
        Some(Box::new(Arc::new(Config::new())))
    } else {
        None
    }
}

/// The mocks that stand in for a service's dependencies, by dependency name.
#[derive(Default)]
pub struct Mocks {
    mocks: Vec<(&'static str, Box<dyn Mock>)>,
}

impl fmt::Debug for Mocks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.mocks.iter().map(|(n, _)| n))
            .finish()
    }
}

impl Mocks {
    pub(crate) fn push(&mut self, name: &'static str, mock: Box<dyn Mock>) {
        self.mocks.push((name, mock));
    }

    /// The mock of a dependency, as its type.
    ///
    /// # Panics
    ///
    /// If there is no mock of that name and type; the message lists the mocks there are.
    #[must_use]
    #[track_caller]
    pub fn get<M: Mock + Clone>(&self, name: &str) -> M {
        self.mocks
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, m)| m.as_any().downcast_ref::<M>())
            .cloned()
            .unwrap_or_else(|| {
                panic!(
                    "no {} mock for dependency `{name}`; mocks: {self:?}",
                    std::any::type_name::<M>()
                )
            })
    }

    /// The [`RpcProxyMock`] of a dependency.
    ///
    /// # Panics
    ///
    /// As [`Mocks::get`].
    #[must_use]
    #[track_caller]
    pub fn rpc(&self, name: &str) -> RpcProxyMock {
        self.get(name)
    }

    /// The calls a typed client field received (its mock given with `with`, or the
    /// unscripted one `worker_factory` made for it).
    ///
    /// # Panics
    ///
    /// If the dependency is not a typed client with a mock; the message lists the mocks.
    #[must_use]
    #[track_caller]
    pub fn client_calls(&self, name: &str) -> Vec<ScriptedCall> {
        self.mocks
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, m)| m.scripted_backend())
            .map(|backend| backend.calls())
            .unwrap_or_else(|| {
                panic!("no typed client mock for dependency `{name}`; mocks: {self:?}")
            })
    }

    /// The [`EventDispatcherMock`] of a dependency.
    ///
    /// # Panics
    ///
    /// As [`Mocks::get`].
    #[must_use]
    #[track_caller]
    pub fn events(&self, name: &str) -> EventDispatcherMock {
        self.get(name)
    }
}
