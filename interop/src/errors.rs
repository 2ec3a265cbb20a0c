//! Error types the Rust services of the suite share with the Python ones.

use std::fmt;

use nameko::NamekoError;
use nameko::errors::{FromRemoteError, RemoteError};
use serde_json::{Value, json};

/// Python's builtin `ValueError`, as a Rust service raises it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, NamekoError)]
#[error("{0}")]
#[nameko(exc_type = "ValueError", exc_path = "builtins.ValueError")]
pub struct ValueError(pub String);

/// `interop_errors.InsufficientFunds(balance, amount)`: one exception type, declared on
/// both sides with the same `exc_path`, that Python and Rust callers each rebuild as
/// their own type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsufficientFunds {
    /// What the account holds.
    pub balance: i64,
    /// What was asked for.
    pub amount: i64,
}

impl fmt::Display for InsufficientFunds {
    /// As Python prints an exception with two arguments: `(100, 150)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.balance, self.amount)
    }
}

impl std::error::Error for InsufficientFunds {}

impl nameko::errors::NamekoError for InsufficientFunds {
    fn exc_type() -> &'static str {
        "InsufficientFunds"
    }

    fn exc_path() -> &'static str {
        "interop_errors.InsufficientFunds"
    }

    fn exc_args(&self) -> Vec<Value> {
        vec![json!(self.balance), json!(self.amount)]
    }
}

impl FromRemoteError for InsufficientFunds {
    /// From `exc_args`, which nameko stringifies: `["100", "150"]`.
    fn from_remote(error: &RemoteError) -> Option<Self> {
        let number = |i: usize| match error.exc_args.get(i)? {
            Value::String(s) => s.parse().ok(),
            other => other.as_i64(),
        };
        Some(Self {
            balance: number(0)?,
            amount: number(1)?,
        })
    }
}
