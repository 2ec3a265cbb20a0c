//! The interoperability suite of nameko-rs: Rust services and clients next to Python
//! nameko 2.14.1, on a real RabbitMQ.
//!
//! Each test runs in an [`Interop`]: a fresh RabbitMQ virtual host with the test's Rust
//! services in-process (a [`TestCluster`](nameko::testing::TestCluster)), and Python
//! nameko services and clients hosted by the test binary's [`Agent`], a Python process
//! started once per test file. [`run`] bounds a test in time and cleans up after it:
//!
//! ```no_run
//! use nameko_interop::run;
//! use serde_json::json;
//!
//! # async fn example() {
//! run(async |mut env| {
//!     env.start_python(&["services:Api"]).await;
//!     let proxy = env.cluster().proxy().await;
//!     let echoed: serde_json::Value = proxy.service("py_api").call("echo", ("hi",)).await.unwrap();
//!     assert_eq!(echoed, json!("hi"));
//!     env.shutdown().await;
//! })
//! .await;
//! # }
//! ```
//!
//! Python comes from the virtual environment `scripts/python-env` makes (with the pins of
//! `interop/requirements.txt`). The tests never install it themselves unless
//! `NAMEKO_PYTHON_SETUP=1` asks them to. Without that environment, or without RabbitMQ,
//! a test prints why and passes without running; with `NAMEKO_REQUIRE_PYTHON=1` or
//! `NAMEKO_REQUIRE_AMQP=1` it fails instead.

mod agent;
mod env;
mod errors;
mod raw;
mod recorder;
mod web;

use std::time::Duration;

use nameko::worker::WorkerContext;
use serde_json::{Value, json};

pub use agent::{
    Agent, PYTHON_SETUP_VAR, PythonError, REQUIRE_PYTHON_OTEL_VAR, REQUIRE_PYTHON_VAR, python_otel,
};
pub use env::Interop;
pub use errors::{InsufficientFunds, ValueError};
pub use raw::RawRpc;
pub use recorder::Recorder;
pub use web::{PythonWeb, python_ws_client};

/// How long one test may take, Python and Rust together.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs one interop test: makes its [`Interop`] (or returns after printing why it is
/// skipped), runs `test` within [`TEST_TIMEOUT`], and cleans up: every Python container
/// the test started is killed, then its Rust containers, and the virtual host is
/// deleted, even when the test panics or times out.
///
/// # Panics
///
/// When the test panics or times out, or Python or RabbitMQ is missing and required.
pub async fn run(test: impl AsyncFnOnce(Interop)) {
    let Some(env) = Interop::start().await else {
        return;
    };
    let log = env.agent().log().to_owned();
    if tokio::time::timeout(TEST_TIMEOUT, test(env)).await.is_err() {
        panic!(
            "the test did not finish within {TEST_TIMEOUT:?}; Python's log is {}",
            log.display()
        );
    }
}

/// What a Rust worker knows about its call, in the shape the Python services report it
/// (`services.describe`): service, call id, call id stack, origin and immediate parent
/// call ids, and context data.
#[must_use]
pub fn describe(worker: &WorkerContext) -> Value {
    json!({
        "service": worker.service_name(),
        "call_id": worker.call_id(),
        "stack": worker.call_id_stack(),
        "origin": worker.origin_call_id(),
        "parent": worker.immediate_parent_call_id(),
        "data": worker.context().to_map(),
    })
}
