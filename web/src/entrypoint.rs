//! The `#[http(...)]` entrypoint: nameko's `HttpRequestHandler`.

use std::fmt;
use std::sync::Arc;

use nameko_core::context::ContextData;
use nameko_core::errors::RemoteError;
use nameko_core::extension::instrumentation::{self, Carrier};
use nameko_core::extension::{
    DescribeContext, Description, Entrypoint, EntrypointContext, ExtensionError, SpawnError,
};
use nameko_core::method::{Method, Natives, Output};
use nameko_core::wire::CallArgs;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::Body;
use crate::config::ContextDataHook;
use crate::error::RuleError;
use crate::request::Request;
use crate::response::{self, Response};
use crate::routes::Handler;
use crate::rule::Rule;
use crate::server::WebServer;

/// What answers a worker's error instead of nameko's `Error: <exc_type>: <value>\n`
/// (nameko's `response_from_exception`): it gets the error and whether it is one of the
/// entrypoint's expected exceptions.
pub type ExceptionHook = Arc<dyn Fn(&RemoteError, bool) -> Response + Send + Sync>;

/// An HTTP entrypoint: `#[http("GET", "/get/<int:value>")]` on a service method builds
/// one (see [`http!`](crate::http)).
///
/// The method's parameters are the rule's variables, by name, converted to their types
/// (`value: u32` for `<int:value>`), and optionally first a [`Request`] (in Python,
/// `def get(self, request, value)`): a parameter that is not a variable of the rule is
/// the request, and must come first.
pub struct Http {
    methods: String,
    url: String,
    rule: Result<Rule, RuleError>,
    response_from_exception: Option<ExceptionHook>,
    context_data: Option<ContextDataHook>,
    registered: Mutex<Option<(Arc<WebServer>, u64)>>,
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http")
            .field("methods", &self.methods)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Http {
    /// An entrypoint answering `methods` (`"GET"`, `"GET,PUT,POST,DELETE"`) on the
    /// werkzeug rule `url`; a bad rule is refused when the container is built.
    #[must_use]
    pub fn new(methods: &str, url: &str) -> Self {
        Self {
            methods: methods.to_owned(),
            url: url.to_owned(),
            rule: Rule::parse(url),
            response_from_exception: None,
            context_data: None,
            registered: Mutex::new(None),
        }
    }

    /// Answers the worker's errors with `hook` (nameko's `response_from_exception`).
    #[must_use]
    pub fn response_from_exception(
        mut self,
        hook: impl Fn(&RemoteError, bool) -> Response + Send + Sync + 'static,
    ) -> Self {
        self.response_from_exception = Some(Arc::new(hook));
        self
    }

    /// Takes the worker's context data from the request with `hook` (nameko's
    /// `context_data_from_headers`), instead of the server's (empty by default).
    #[must_use]
    pub fn context_data_from_headers(
        mut self,
        hook: impl Fn(&Request) -> ContextData + Send + Sync + 'static,
    ) -> Self {
        self.context_data = Some(Arc::new(hook));
        self
    }

    /// The methods it answers, as written.
    #[must_use]
    pub fn methods(&self) -> &str {
        &self.methods
    }

    /// The rule, as written.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the method takes the request first; checks that the other parameters are
    /// the rule's variables.
    fn request_param(&self, method: &Method) -> Result<bool, ExtensionError> {
        let rule = self
            .rule
            .as_ref()
            .map_err(|e| ExtensionError::definition(e.to_string()))?;
        let variables = rule.variables();
        for variable in &variables {
            if !method.params.iter().any(|p| p.name == *variable) {
                return Err(ExtensionError::definition(format!(
                    "`{}` has no parameter `{variable}` for the variable of its rule `{}`",
                    method.name, self.url
                )));
            }
        }
        let others: Vec<(usize, &str)> = method
            .params
            .iter()
            .enumerate()
            .filter(|(_, p)| !variables.contains(&p.name))
            .map(|(i, p)| (i, p.name))
            .collect();
        match others.as_slice() {
            [] => Ok(false),
            [(0, _)] => Ok(true),
            [(_, name)] => Err(ExtensionError::definition(format!(
                "`{}`: the request parameter `{name}` comes first, before the variables of `{}`",
                method.name, self.url
            ))),
            _ => Err(ExtensionError::definition(format!(
                "`{}` has parameters that are not variables of its rule `{}`: {} (only the first parameter may be the request)",
                method.name,
                self.url,
                others
                    .iter()
                    .map(|(_, n)| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

#[async_trait::async_trait]
impl Entrypoint for Http {
    fn kind(&self) -> &'static str {
        "http"
    }

    /// Takes no broker messages: AsyncAPI documents list the route (``HTTP `GET
    /// /get/<int:value>` ``) without a channel.
    fn describe(&self, _ctx: &DescribeContext<'_>) -> Description {
        Description::not_messaging(format!("HTTP `{} {}`", self.methods, self.url))
    }

    fn check(&self, method: &Method) -> Result<(), ExtensionError> {
        self.request_param(method).map(|_| ())
    }

    async fn setup(&mut self, ctx: &EntrypointContext) -> Result<(), ExtensionError> {
        let rule = self
            .rule
            .clone()
            .map_err(|e| ExtensionError::definition(e.to_string()))?;
        let with_request = self.request_param(ctx.method())?;
        let server = WebServer::of(ctx.container())?;
        let context_hook = self
            .context_data
            .clone()
            .or_else(|| server.default_context_hook());
        let call = Arc::new(HttpCall {
            ctx: ctx.clone(),
            methods: Arc::from(self.methods.as_str()),
            url: Arc::from(self.url.as_str()),
            with_request,
            context_hook,
            exception_hook: self.response_from_exception.clone(),
        });
        let handler: Handler = Arc::new(move |request| {
            let call = call.clone();
            Box::pin(async move { call.handle(request).await })
        });
        let owner = format!("{}.{}", ctx.container().service_name(), ctx.method().name);
        let id = server
            .add_route(rule, &self.methods, owner, handler)
            .map_err(|e| ExtensionError::definition(e.to_string()))?;
        *self.registered.lock() = Some((server, id));
        Ok(())
    }

    /// The route stays: while the server goes on for other services of the process, a
    /// request for it is answered 503 (the service is stopping, or stopped), not 404.
    async fn close(&self) {
        if let Some((server, id)) = self.registered.lock().take() {
            server.retire_route(id);
        }
    }

    async fn kill(&self) {
        self.close().await;
    }
}

/// What one entrypoint needs to answer a request.
struct HttpCall {
    ctx: EntrypointContext,
    methods: Arc<str>,
    url: Arc<str>,
    with_request: bool,
    context_hook: Option<ContextDataHook>,
    exception_hook: Option<ExceptionHook>,
}

impl HttpCall {
    fn error_response(&self, error: &RemoteError) -> Response {
        let expected = self.ctx.is_expected(error);
        match &self.exception_hook {
            Some(hook) => hook(error, expected),
            None => Response::from_error(error, expected),
        }
    }

    async fn handle(self: &Arc<Self>, request: Request) -> http::Response<Body> {
        let context = self
            .context_hook
            .as_ref()
            .map_or_else(ContextData::new, |hook| hook(&request));
        // Only an installed instrumentation reads the headers (a `traceparent`).
        let incoming =
            instrumentation::installed().map(|_| RequestHeaders(request.headers().clone()));
        let mut args = CallArgs::new();
        for (name, value) in request.path_values() {
            args.kwargs.insert(name.clone(), value.clone());
        }
        let mut natives = Natives::new();
        if self.with_request {
            args.args.push(serde_json::Value::Null);
            natives.insert(request);
        }
        let workers = self.ctx.workers();
        let call = match workers.bind_with(self.ctx.method().name, args, natives) {
            Ok(call) => call,
            Err(error) => return self.error_response(&error.to_remote_error()).into_http(),
        };
        let slot = match workers.slot().await {
            Ok(slot) => slot,
            Err(SpawnError::Stopping | SpawnError::Killed | SpawnError::NotRunning(_)) => {
                return response::unavailable();
            }
            Err(other) => {
                let message = other.to_string();
                let error = RemoteError::new(
                    "Exception",
                    "builtins.Exception",
                    [message.clone()],
                    message,
                );
                return self.error_response(&error).into_http();
            }
        };
        let (mut worker, span) = match &incoming {
            Some(headers) => {
                let worker = workers.start_from(slot, call, context, &[], headers);
                let span = worker.span().clone();
                (worker, Some(span))
            }
            None => (workers.start(slot, call, context, &[]), None),
        };
        worker.set_attribute("http_method", self.methods.clone());
        worker.set_attribute("endpoint", self.url.clone());
        let (sender, receiver) = oneshot::channel();
        let call = Arc::clone(self);
        workers.spawn(worker, move |worker| async move {
            let mut run = worker.run().await;
            let result = match run.take_native::<Response>() {
                Some(response) => Ok(response),
                None => match run.result() {
                    Ok(Output::Json(value)) => Response::from_json(value.clone()),
                    Ok(_) => Err(response::type_error(
                        "the handler returned a value no HTTP response can be made of".to_owned(),
                    )),
                    Err(error) => Err(error.clone()),
                },
            };
            let response = result.unwrap_or_else(|error| call.error_response(&error));
            run.set_attribute("status_code", response.status().to_string());
            let _ = sender.send(response);
            run.finish().await;
        });
        let response = match receiver.await {
            Ok(response) => response.into_http(),
            Err(_) => {
                let error = RemoteError::new(
                    "ContainerBeingKilled",
                    "nameko.exceptions.ContainerBeingKilled",
                    Vec::<String>::new(),
                    "",
                );
                Response::from_error(&error, false).into_http()
            }
        };
        if let Some(span) = span {
            // Kept by the span when the instrumentation declared the field.
            span.record(HTTP_STATUS_FIELD, i64::from(response.status().as_u16()));
        }
        response
    }
}

/// The field of a worker's span that gets the HTTP status of the response, when the
/// installed instrumentation's span has it (OpenTelemetry's name).
pub const HTTP_STATUS_FIELD: &str = "http.response.status_code";

/// The headers of a request, as an instrumentation reads them (lower-case names).
struct RequestHeaders(http::HeaderMap);

impl Carrier for RequestHeaders {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}
