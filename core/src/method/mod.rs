//! Entrypoint methods as the framework sees them: their parameters, how a call's
//! arguments bind to them, and what they return.
//!
//! - [`Binder`] binds nameko's `args`/`kwargs` to parameters with Python's rules and
//!   messages; each parameter converts through [`FromArg`] (JSON, or a [`Natives`] value
//!   an entrypoint supplies);
//! - [`IntoOutput`] turns a return value into an [`Output`] for the entrypoint.

mod bind;
mod output;

pub use bind::{BindError, Binder, FromArg, Natives, Param};
pub use output::{__convert, IntoOutput, Output, result_output};

/// An entrypoint method: its name and parameters (after `&self`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Method {
    /// The method's name.
    pub name: &'static str,
    /// Its parameters, in order.
    pub params: &'static [Param],
}

impl Method {
    /// A method.
    #[must_use]
    pub const fn new(name: &'static str, params: &'static [Param]) -> Self {
        Self { name, params }
    }

    /// Names of its parameters, in order.
    pub fn param_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.params.iter().map(|p| p.name)
    }
}
