//! nameko-testing: the testing toolkit of nameko-rs.
//!
//! - [`conformance`]: the transport conformance suite every backend runs, with the
//!   [`Harness`](conformance::Harness) a backend's tests implement and a reference topic
//!   matcher.

pub mod conformance;
