//! A calculator, with an error that is part of its contract.

use nameko::prelude::*;

/// Division by zero: Python callers see a `ValueError`, Rust callers can decode it back.
#[derive(Debug, Clone, PartialEq, Eq, NamekoError)]
#[nameko(
    exc_type = "ValueError",
    exc_path = "builtins.ValueError",
    display = "{0}"
)]
pub struct ValueError(pub String);

/// `calculator`: arithmetic over RPC.
#[derive(Debug, Dependencies)]
pub struct Calculator;

#[service(name = "calculator")]
impl Calculator {
    /// `a + b`.
    #[rpc]
    pub async fn add(&self, a: f64, b: f64) -> f64 {
        a + b
    }

    /// `a * b`.
    #[rpc]
    pub async fn multiply(&self, a: f64, b: f64) -> f64 {
        a * b
    }

    /// `a / b`; dividing by zero raises an expected `ValueError("Division by zero")`.
    #[rpc(expected_exceptions = [ValueError])]
    pub async fn divide(&self, a: f64, b: f64) -> Result<f64, ValueError> {
        if b == 0.0 {
            return Err(ValueError("Division by zero".to_owned()));
        }
        Ok(a / b)
    }
}
