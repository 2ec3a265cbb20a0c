//! Errors of the web server and of its routes, and nameko's `BadRequest`.

use std::net::SocketAddr;

use nameko_core::errors::NamekoError;

/// A URL rule that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid URL rule `{rule}`: {reason}")]
pub struct RuleError {
    rule: String,
    reason: String,
}

impl RuleError {
    pub(crate) fn new(rule: &str, reason: impl Into<String>) -> Self {
        Self {
            rule: rule.to_owned(),
            reason: reason.into(),
        }
    }

    /// The rule as written.
    #[must_use]
    pub fn rule(&self) -> &str {
        &self.rule
    }
}

/// What the web server refuses or fails at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebError {
    /// A rule that cannot be parsed.
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// Two routes match the same requests.
    #[error(
        "HTTP route {new} (`{new_rule}`) clashes with {existing} (`{existing_rule}`): both answer {methods} on the same paths"
    )]
    Clash {
        /// The route being added (`service.method` or the mount's name).
        new: String,
        /// Its rule or path.
        new_rule: String,
        /// The route already there.
        existing: String,
        /// Its rule or path.
        existing_rule: String,
        /// The methods both answer.
        methods: String,
    },
    /// `WEB_SERVER_ADDRESS` is not `[host:]port`.
    #[error("misconfigured bind address `{0}`: should be `[address:]port` (WEB_SERVER_ADDRESS)")]
    Address(String),
    /// The server could not listen.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// Where.
        address: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A configuration value of the web server is wrong.
    #[error("{0}")]
    Config(String),
    /// No `#[http]` entrypoint of that name is served.
    #[error("no HTTP entrypoint `{0}` is served (is its service started?)")]
    NoEntrypoint(String),
    /// A request built for an entrypoint whose rule does not match its path.
    #[error("the path `{path}` does not match the rule `{rule}` of the entrypoint")]
    PathMismatch {
        /// The request's path.
        path: String,
        /// The entrypoint's rule.
        rule: String,
    },
    /// A mount path that is not `/something`.
    #[error("invalid mount path `{0}`: it starts with `/` and does not end with `/`")]
    MountPath(String),
}

/// nameko's `BadRequest`: the request is not what the handler can work with. An HTTP
/// entrypoint answers it with 400 `Error: BadRequest: <message>`, expected or not.
///
/// ```
/// use nameko_web::BadRequest;
/// use nameko_core::errors::IntoRemoteError;
///
/// let remote = BadRequest::new("`name` is required").into_remote_error();
/// assert_eq!(remote.exc_type, "BadRequest");
/// assert_eq!(remote.exc_path, "nameko.exceptions.BadRequest");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadRequest(pub String);

impl BadRequest {
    /// A bad request, with what is wrong.
    #[must_use]
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl NamekoError for BadRequest {
    fn exc_type() -> &'static str {
        "BadRequest"
    }

    fn exc_path() -> &'static str {
        BAD_REQUEST
    }
}

/// `exc_path` of nameko's `BadRequest`.
pub const BAD_REQUEST: &str = "nameko.exceptions.BadRequest";

impl From<WebError> for nameko_core::extension::ExtensionError {
    /// An extension that could not mount on the web server fails its container's start
    /// with the reason.
    fn from(error: WebError) -> Self {
        Self::Other {
            message: error.to_string(),
            source: Some(Box::new(error)),
        }
    }
}
