#![doc = include_str!("../README.md")]

mod cluster;
#[cfg(feature = "db")]
mod db;
mod factory;
mod hooks;
mod mocks;
mod replace;
mod vhost;
#[cfg(feature = "web")]
mod web;

#[doc(inline)]
pub use nameko_transport_conformance as conformance;

pub use cluster::{NotIdle, TRANSPORT_VAR, TestCluster};
#[cfg(feature = "db")]
pub use db::{
    MARIADB_URI_VAR, POSTGRES_URI_VAR, REQUIRE_MARIADB_VAR, REQUIRE_POSTGRES_VAR, TestDatabase,
};
pub use factory::{FactoryError, WorkerFactory, worker_factory};
pub use hooks::{
    DEFAULT_TIMEOUT, EntrypointHook, EntrypointWaiter, HookError, WaiterError, entrypoint_hook,
    entrypoint_waiter,
};
pub use mocks::{EventDispatcherMock, Mock, Mocks, RecordedCall, RecordedEvent, RpcProxyMock};
pub use nameko_amqp::test_support::{RabbitmqctlError, rabbitmqctl};
pub use replace::{replace_dependencies, replace_dependency, restrict_entrypoints};
pub use vhost::{TestVhost, VhostError};
#[cfg(feature = "web")]
pub use web::{WEB_SESSION_TIMEOUT, WebSession};

/// Runs each test function twice: on the in-memory broker (`memory`) and on RabbitMQ
/// (`rabbitmq`, which skips with a message when no broker is reachable, unless
/// `NAMEKO_REQUIRE_AMQP=1`).
///
/// Each function takes a fresh [`TestCluster`].
///
/// ```no_run
/// use nameko::prelude::*;
/// use nameko_testing::{TestCluster, cluster_tests};
///
/// #[derive(Dependencies)]
/// struct Echo;
///
/// #[service(name = "echo")]
/// impl Echo {
///     #[rpc]
///     async fn echo(&self, value: Value) -> Value {
///         value
///     }
/// }
///
/// cluster_tests! {
///     async fn echo_round_trip(cluster: TestCluster) {
///         let mut cluster = cluster;
///         cluster.start::<Echo>().await;
///         let proxy = cluster.proxy().await;
///         let out: Value = proxy.service("echo").call("echo", (1,)).await.unwrap();
///         assert_eq!(out, json!(1));
///         cluster.shutdown().await;
///     }
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! cluster_tests {
    ($(
        $(#[$meta:meta])*
        async fn $name:ident($cluster:ident : $ty:ty) $body:block
    )*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn case($cluster: $ty) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                case($crate::TestCluster::memory()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rabbitmq() {
                let Some(cluster) = $crate::TestCluster::rabbitmq().await else { return };
                case(cluster).await;
            }
        }
    )*};
}
