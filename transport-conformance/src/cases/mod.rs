//! The conformance cases, grouped by behaviour area. Each is an `async fn(&Cx) ->
//! CaseResult`, run by [`crate::run_transport_suite`].

pub(crate) mod delivery;
pub(crate) mod lifecycle;
pub(crate) mod policies;
pub(crate) mod properties;
pub(crate) mod publish;
pub(crate) mod routing;
