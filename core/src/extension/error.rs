//! The error of an extension's lifecycle.

use std::error::Error as StdError;

use crate::config::{ConfigError, QueueTypeError};
use crate::transport::TransportError;
use crate::transport::topology::DeclareError;

/// An extension (entrypoint, shared extension) could not set up or start.
///
/// ```
/// use nameko_core::extension::ExtensionError;
///
/// let err = ExtensionError::definition("a `#[cron]` method takes no arguments besides `&self`");
/// assert_eq!(err.to_string(), "a `#[cron]` method takes no arguments besides `&self`");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtensionError {
    /// A configuration value is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `QUEUE_TYPE` asks for a queue type the queue's options do not allow.
    #[error(transparent)]
    QueueType(#[from] QueueTypeError),
    /// The extension does not fit the service or the method it is attached to.
    #[error("{0}")]
    Definition(String),
    /// The broker refused a declaration, or could not be reached.
    #[error("transport error while {doing}: {source}")]
    Transport {
        /// What the extension was doing.
        doing: String,
        /// The transport's error.
        #[source]
        source: TransportError,
    },
    /// Anything else, with its cause.
    #[error("{message}")]
    Other {
        /// What failed.
        message: String,
        /// Why, when known.
        #[source]
        source: Option<Box<dyn StdError + Send + Sync>>,
    },
}

impl ExtensionError {
    /// The extension does not fit its service or method.
    #[must_use]
    pub fn definition(message: impl Into<String>) -> Self {
        Self::Definition(message.into())
    }

    /// A transport error while `doing` something.
    #[must_use]
    pub fn transport(doing: impl Into<String>, source: TransportError) -> Self {
        Self::Transport {
            doing: doing.into(),
            source,
        }
    }

    /// A failure described by a message.
    #[must_use]
    pub fn msg(message: impl Into<String>) -> Self {
        Self::Other {
            message: message.into(),
            source: None,
        }
    }

    /// A failure with its cause.
    #[must_use]
    pub fn with_source(
        message: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        Self::Other {
            message: message.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl From<DeclareError> for ExtensionError {
    fn from(error: DeclareError) -> Self {
        Self::Transport {
            doing: format!("declaring {}", error.declaration),
            source: error.source,
        }
    }
}
