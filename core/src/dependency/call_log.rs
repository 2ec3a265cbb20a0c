//! The entrypoint call log: one structured line per worker (nameko-tracer's role).

use serde_json::{Map, Value, json};

use super::{Dependency, DependencyProvider, ProviderError};
use crate::extension::ContainerContext;
use crate::worker::{WorkerContext, WorkerResult};

/// The `tracing` target of call log lines (nameko-tracer's logger name).
pub const CALL_LOG_TARGET: &str = "nameko_tracer";

/// The configuration key of the call log: `CALL_LOG: {response_max_length: 100}`.
pub const CALL_LOG: &str = "CALL_LOG";

/// How much of a result a line shows by default, in characters (nameko-tracer's).
pub const DEFAULT_RESPONSE_MAX_LENGTH: usize = 100;

/// A field that turns on the call log of its service: every worker of every entrypoint
/// ends with one line, an `info` event (a `warn` for a failed worker) of target
/// [`CALL_LOG_TARGET`] whose `nameko_trace` field is a JSON object with nameko-tracer's
/// keys:
///
/// | key | |
/// |---|---|
/// | `stage` | `"response"` |
/// | `service`, `entrypoint_name`, `entrypoint_type` | which entrypoint ran (`"rpc"`, `"event_handler"`, `"http"`, ...) |
/// | `call_id`, `call_id_stack`, `origin_call_id` | the call and its callers |
/// | `call_args`, `call_args_redacted` | the arguments by parameter name, sensitive ones as `"********"`; whether the entrypoint has sensitive arguments |
/// | `response`, `response_length`, `response_truncated` | the result as JSON text, cut to `response_max_length` characters |
/// | `response_status`, `response_time` | `"success"` or `"error"`; seconds since the worker started |
/// | `exception_type`, `exception_path`, `exception_value`, `exception_args` | the error, for a failed worker |
///
/// Context data is left out (it carries `auth_token`). Any `tracing` subscriber takes
/// the lines; to keep them alone, filter on the target (`RUST_LOG=nameko_tracer=info`).
///
/// ```
/// use nameko_core::dependency::CallLog;
///
/// // In a service: `#[derive(Dependencies)] struct Payments { call_log: CallLog, ... }`.
/// let _: CallLog = CallLog;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CallLog;

impl Dependency for CallLog {
    type Provider = CallLogProvider;

    fn provider(_field: &'static str) -> CallLogProvider {
        CallLogProvider::default()
    }
}

/// Provides a [`CallLog`]: writes each worker's line when the worker's result is known.
#[derive(Debug, Clone)]
pub struct CallLogProvider {
    response_max_length: usize,
}

impl Default for CallLogProvider {
    fn default() -> Self {
        Self {
            response_max_length: DEFAULT_RESPONSE_MAX_LENGTH,
        }
    }
}

impl CallLogProvider {
    /// A provider that cuts results to `max` characters, whatever the configuration
    /// says.
    #[must_use]
    pub fn with_response_max_length(max: usize) -> Self {
        Self {
            response_max_length: max,
        }
    }

    /// The line of a worker that ended with `result`.
    #[must_use]
    pub fn line(&self, worker: &WorkerContext, result: &WorkerResult) -> Value {
        let mut line = Map::new();
        line.insert("stage".to_owned(), json!("response"));
        line.insert("service".to_owned(), json!(worker.service_name()));
        line.insert("entrypoint_name".to_owned(), json!(worker.entrypoint()));
        line.insert(
            "entrypoint_type".to_owned(),
            json!(worker.entrypoint_kind()),
        );
        line.insert("call_id".to_owned(), json!(worker.call_id()));
        line.insert("call_id_stack".to_owned(), json!(worker.call_id_stack()));
        line.insert("origin_call_id".to_owned(), json!(worker.origin_call_id()));
        line.insert(
            "call_args".to_owned(),
            Value::Object(worker.redacted_args()),
        );
        line.insert(
            "call_args_redacted".to_owned(),
            json!(!worker.sensitive_arguments().is_empty()),
        );
        line.insert(
            "response_time".to_owned(),
            json!(worker.started().elapsed().as_secs_f64()),
        );
        match result {
            Ok(value) => {
                let text = value.to_string();
                let length = text.chars().count();
                let truncated = length > self.response_max_length;
                let shown: String = if truncated {
                    text.chars().take(self.response_max_length).collect()
                } else {
                    text
                };
                line.insert("response_status".to_owned(), json!("success"));
                line.insert("response".to_owned(), json!(shown));
                line.insert("response_length".to_owned(), json!(length));
                line.insert("response_truncated".to_owned(), json!(truncated));
            }
            Err(error) => {
                line.insert("response_status".to_owned(), json!("error"));
                line.insert("exception_type".to_owned(), json!(error.exc_type));
                line.insert("exception_path".to_owned(), json!(error.exc_path));
                line.insert("exception_value".to_owned(), json!(error.value));
                line.insert("exception_args".to_owned(), json!(error.exc_args));
            }
        }
        for (key, value) in worker.attributes() {
            line.entry(key).or_insert_with(|| json!(value));
        }
        Value::Object(line)
    }
}

impl DependencyProvider for CallLogProvider {
    type Output = CallLog;

    async fn setup(&mut self, container: &ContainerContext) -> Result<(), ProviderError> {
        let Some(config) = container.config().get(CALL_LOG) else {
            return Ok(());
        };
        match config.get("response_max_length") {
            None => Ok(()),
            Some(value) => match value.as_u64().and_then(|n| usize::try_from(n).ok()) {
                Some(max) => {
                    self.response_max_length = max;
                    Ok(())
                }
                None => Err(ProviderError::new(format!(
                    "{CALL_LOG}.response_max_length must be a whole number of characters, not {value}"
                ))),
            },
        }
    }

    async fn get_dependency(&self, _worker: &WorkerContext) -> Result<CallLog, ProviderError> {
        Ok(CallLog)
    }

    async fn worker_result(&self, worker: &WorkerContext, result: &WorkerResult) {
        let line = self.line(worker, result).to_string();
        if result.is_ok() {
            tracing::info!(target: CALL_LOG_TARGET, nameko_trace = %line, "[{}] entrypoint result trace", worker.call_id());
        } else {
            tracing::warn!(target: CALL_LOG_TARGET, nameko_trace = %line, "[{}] entrypoint result trace", worker.call_id());
        }
    }
}
