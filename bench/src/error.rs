//! The benchmark's error: what went wrong, in words.

use std::fmt;

/// Why a benchmark step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BenchError(String);

impl BenchError {
    /// An error with this message.
    #[must_use]
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// The same error, with what was being done in front.
    #[must_use]
    pub fn context(self, context: impl fmt::Display) -> Self {
        Self(format!("{context}: {}", self.0))
    }
}

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

macro_rules! from_display {
    ($($ty:ty),+ $(,)?) => {
        $(impl From<$ty> for BenchError {
            fn from(error: $ty) -> Self {
                Self(error.to_string())
            }
        })+
    };
}

from_display!(
    String,
    &str,
    std::io::Error,
    serde_json::Error,
    tokio::task::JoinError,
    nameko::errors::RpcError,
    nameko::events::EventError,
    nameko::transport::TransportError,
    nameko::container::ContainerError,
    nameko::config::ConfigError,
    nameko::testing::VhostError,
);

/// The benchmark's result type.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;
