//! What can go wrong with a line, printed on one line as Python names it
//! (`RemoteError: ValueError Division by zero`, `NameError: name 'x' is not defined`),
//! never with a backtrace, never with a password.

use std::time::Duration;

use nameko_core::errors::RpcError;
use nameko_core::events::EventError;

use super::syntax::SyntaxError;
use super::value::JsonError;
use crate::cli::exit;
use crate::logging::redact_line;

/// Why a line failed. The shell prints it and goes on (a script stops at the first one).
///
/// ```
/// use nameko::shell::ShellError;
///
/// let error = ShellError::Name { name: "nn".into(), suggestion: Some("n".into()) };
/// assert_eq!(error.to_string(), "NameError: name 'nn' is not defined. Did you mean: 'n'?");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShellError {
    /// The line is not valid: where, why, and the fix.
    #[error("{0}")]
    Syntax(#[from] SyntaxError),
    /// An unknown name.
    #[error("NameError: name '{name}' is not defined{}", suggest(suggestion))]
    Name {
        /// The name.
        name: String,
        /// A known name close to it.
        suggestion: Option<String>,
    },
    /// A value has no such attribute (`AttributeError`).
    #[error("AttributeError: {0}")]
    Attribute(String),
    /// An operation on a value of the wrong type (`TypeError`).
    #[error("TypeError: {0}")]
    Type(String),
    /// A dict has no such key (`KeyError`, with the key's `repr`).
    #[error("KeyError: {0}")]
    Key(String),
    /// An index out of range (`IndexError`).
    #[error("IndexError: {0}")]
    Index(String),
    /// A value of the right type but not acceptable (`ValueError`).
    #[error("ValueError: {0}")]
    Value(String),
    /// A value nested too deeply to print or send.
    #[error("RecursionError: {0}")]
    Recursion(String),
    /// A value JSON cannot carry.
    #[error("{}", json_error(.0))]
    Json(#[from] JsonError),
    /// A call failed: a remote error, a timeout, an unknown service, the broker.
    #[error("{}", call_error(service, method, error))]
    Call {
        /// The service called.
        service: String,
        /// The method called.
        method: String,
        /// What went wrong.
        #[source]
        error: Box<RpcError>,
    },
    /// An event could not be dispatched.
    #[error("{}", event_error(.0))]
    Event(#[source] Box<EventError>),
    /// An event dispatch got no answer from the broker in time.
    #[error("EventTimeout: the broker did not take the event within {} s", .0.as_secs_f64())]
    EventTimeout(Duration),
    /// The shell's RPC proxy could not start.
    #[error("{}", start_error(.0))]
    Start(#[source] Box<RpcError>),
    /// Ctrl-C stopped the line.
    #[error("KeyboardInterrupt")]
    Interrupted,
}

fn suggest(suggestion: &Option<String>) -> String {
    suggestion
        .as_ref()
        .map(|s| format!(". Did you mean: '{s}'?"))
        .unwrap_or_default()
}

fn json_error(error: &JsonError) -> String {
    match error {
        JsonError::Float(_) | JsonError::BigInt(_) => format!("ValueError: {error}"),
        _ => format!("TypeError: {error}"),
    }
}

fn call_error(service: &str, method: &str, error: &RpcError) -> String {
    let line = if let Some(remote) = error.remote() {
        // nameko's RemoteError: "exc_type value".
        format!("RemoteError: {} {}", remote.exc_type, remote.value)
    } else {
        match error {
            RpcError::MethodNotFound(_)
            | RpcError::IncorrectSignature(_)
            | RpcError::MalformedRequest(_) => error.to_string(),
            RpcError::UnknownService(name) => format!(
                "UnknownService: Unknown service `{name}`: no service of that name is listening"
            ),
            RpcError::Timeout(after) => format!(
                "RpcTimeout: no reply from {service}.{method} within {} s",
                after.as_secs_f64()
            ),
            RpcError::Transport(e) if e.is_connection_error() => {
                format!("ConnectionError: the broker is unreachable: {e}")
            }
            RpcError::Transport(e) => format!("TransportError: {e}"),
            RpcError::InvalidArguments(message) => format!("TypeError: {message}"),
            RpcError::InvalidReply(message) => format!("InvalidReply: {message}"),
            RpcError::RepliesLost(_) => format!("ReplyQueueExpiredWithPendingReplies: {error}"),
            other => format!("RpcError: {other}"),
        }
    };
    redact_line(&line)
}

fn start_error(error: &RpcError) -> String {
    redact_line(&match error {
        RpcError::Transport(e) if e.is_connection_error() => {
            format!("ConnectionError: the broker is unreachable: {e}")
        }
        RpcError::InvalidArguments(message) => format!("ConfigError: {message}"),
        other => format!("RpcError: cannot start the RPC proxy: {other}"),
    })
}

fn event_error(error: &EventError) -> String {
    let line = match error {
        EventError::Transport(e) if e.is_connection_error() => {
            format!("ConnectionError: the broker is unreachable: {e}")
        }
        EventError::Payload(message) => format!("TypeError: {message}"),
        other => format!("EventError: {other}"),
    };
    redact_line(&line)
}

impl ShellError {
    /// The exit code of a script that stops on this error, as the `nameko` tool's: 1 for
    /// an error the service answered, 2 for a line that cannot run, 3 for an unknown
    /// service, 4 for a timeout, 5 for the broker, 6 for anything else.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Call { error, .. } => match &**error {
                RpcError::UnknownService(_) => exit::UNKNOWN_SERVICE,
                RpcError::Timeout(_) => exit::TIMEOUT,
                RpcError::Transport(e) if e.is_connection_error() => exit::CONNECTION,
                RpcError::InvalidArguments(_) => exit::USAGE,
                e if e.remote().is_some() => exit::REMOTE_ERROR,
                RpcError::MethodNotFound(_)
                | RpcError::IncorrectSignature(_)
                | RpcError::MalformedRequest(_) => exit::REMOTE_ERROR,
                _ => exit::FAILURE,
            },
            Self::Start(error) => match &**error {
                RpcError::Transport(e) if e.is_connection_error() => exit::CONNECTION,
                RpcError::InvalidArguments(_) => exit::USAGE,
                _ => exit::FAILURE,
            },
            Self::Event(error) => match &**error {
                EventError::Transport(e) if e.is_connection_error() => exit::CONNECTION,
                EventError::Payload(_) => exit::USAGE,
                _ => exit::FAILURE,
            },
            Self::Interrupted => exit::FAILURE,
            Self::EventTimeout(_) => exit::TIMEOUT,
            Self::Syntax(_)
            | Self::Name { .. }
            | Self::Attribute(_)
            | Self::Type(_)
            | Self::Key(_)
            | Self::Index(_)
            | Self::Value(_)
            | Self::Recursion(_)
            | Self::Json(_) => exit::USAGE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nameko_core::errors::RemoteError;

    fn call(error: RpcError) -> ShellError {
        ShellError::Call {
            service: "calculator".into(),
            method: "divide".into(),
            error: Box::new(error),
        }
    }

    #[test]
    fn call_errors_print_as_nameko_names_them() {
        let remote = RemoteError::new(
            "ValueError",
            "builtins.ValueError",
            ["Division by zero"],
            "Division by zero",
        );
        let error = call(RpcError::Remote(remote));
        assert_eq!(
            error.to_string(),
            "RemoteError: ValueError Division by zero"
        );
        assert_eq!(error.exit_code(), exit::REMOTE_ERROR);
        let error = call(RpcError::Timeout(Duration::from_millis(500)));
        assert_eq!(
            error.to_string(),
            "RpcTimeout: no reply from calculator.divide within 0.5 s"
        );
        assert_eq!(error.exit_code(), exit::TIMEOUT);
        let error = call(RpcError::UnknownService("nobody".into()));
        assert!(
            error
                .to_string()
                .starts_with("UnknownService: Unknown service `nobody`")
        );
        assert_eq!(error.exit_code(), exit::UNKNOWN_SERVICE);
        let error = call(RpcError::MethodNotFound("nope".into()));
        assert_eq!(error.to_string(), "MethodNotFound: nope");
        assert_eq!(
            ShellError::Json(JsonError::Float("inf".into())).to_string(),
            "ValueError: Out of range float values are not JSON compliant: inf"
        );
    }
}
