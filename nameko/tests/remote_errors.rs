//! Errors that propagate from service to service reach callers the same way whatever the
//! deployment: `orders` lets `products`' errors propagate, and its caller sees nameko's
//! `RemoteError` for `ProductNotFound` (not registered) and `OutOfStock` itself (registered
//! with `#[nameko(deserialize_to_instance)]`), whether `products` runs in the same
//! process as `orders` or in another, and in unit tests with an `RpcProxyMock` as well.

mod process_support;
#[path = "../examples/error_services/services.rs"]
mod services;

use std::time::Duration;

use nameko::errors::{IntoRemoteError, REMOTE_ERROR, is_registered};
use nameko::prelude::*;
use nameko::testing::{RpcProxyMock, TestCluster, worker_factory};
use tokio::time::Instant;

use process_support::{ServiceProcess, example_binary};
use services::{Orders, OutOfStock, ProductNotFound, Products};

/// What a caller of `orders` gets.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    variant: &'static str,
    exc_type: String,
    exc_path: String,
    value: String,
    typed: Option<String>,
}

fn outcome(error: &RpcError) -> Outcome {
    let remote = error
        .remote()
        .unwrap_or_else(|| panic!("a remote error, not {error:?}"));
    Outcome {
        variant: match error {
            RpcError::Remote(_) => "Remote",
            RpcError::Registered(_) => "Registered",
            _ => "other",
        },
        exc_type: remote.exc_type.clone(),
        exc_path: remote.exc_path.clone(),
        value: remote.value.clone(),
        typed: error.downcast_ref::<OutOfStock>().map(|e| e.0.clone()),
    }
}

/// `orders.describe(7)` and `orders.place("tea")`, as every deployment must answer them.
fn expected() -> [Outcome; 2] {
    [
        Outcome {
            variant: "Remote",
            exc_type: "RemoteError".to_owned(),
            exc_path: REMOTE_ERROR.to_owned(),
            value: "ProductNotFound product 7 not found".to_owned(),
            typed: None,
        },
        Outcome {
            variant: "Registered",
            exc_type: "OutOfStock".to_owned(),
            exc_path: "products.OutOfStock".to_owned(),
            value: "tea is out of stock".to_owned(),
            typed: Some("tea is out of stock".to_owned()),
        },
    ]
}

/// Calls `orders` through `proxy` as any caller would.
async fn ask_orders(proxy: &ClusterRpcProxy) -> [Outcome; 2] {
    let orders = proxy
        .service("orders")
        .with_timeout(Duration::from_secs(20));
    let describe = orders.call::<Value>("describe", (7,)).await.unwrap_err();
    let place = orders.call::<Value>("place", ("tea",)).await.unwrap_err();
    [outcome(&describe), outcome(&place)]
}

#[test]
fn registration_follows_the_derive_not_the_services_that_run() {
    // Before any container exists: the derive registered the type.
    assert!(is_registered("products.OutOfStock"));
    assert!(!is_registered("products.ProductNotFound"));
}

#[tokio::test]
async fn a_unit_test_with_a_mock_sees_what_a_cluster_sees() {
    let products = RpcProxyMock::new()
        .fail("get", ProductNotFound("7".to_owned()).into_remote_error())
        .fail(
            "reserve",
            OutOfStock("tea is out of stock".to_owned()).into_remote_error(),
        );
    let orders = worker_factory::<Orders>()
        .with("products", products)
        .build()
        .unwrap();
    // What orders raises, as its caller decodes it.
    let as_caller_sees =
        |error: RpcError| outcome(&RpcError::from_remote(error.into_remote_error()));
    let describe = orders.describe(7).await.unwrap_err();
    let place = orders.place("tea".to_owned()).await.unwrap_err();
    assert_eq!(
        [as_caller_sees(describe), as_caller_sees(place)],
        expected()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_in_one_process_propagate_errors_as_nameko_does() {
    let mut cluster = TestCluster::memory();
    cluster.start::<Products>().await;
    cluster.start::<Orders>().await;
    let proxy = cluster.proxy().await;
    assert_eq!(ask_orders(&proxy).await, expected());
    // products' own callers: ProductNotFound as a RemoteError of that type, OutOfStock typed.
    let products = proxy.service("products");
    let not_found = products.call::<Value>("get", (7,)).await.unwrap_err();
    assert!(matches!(&not_found, RpcError::Remote(r) if r.exc_type == "ProductNotFound"));
    // Rebuilt on purpose, it round-trips: its argument is its field, not its message.
    let rebuilt: ProductNotFound = not_found.decode().unwrap();
    assert_eq!(rebuilt.0, "7");
    let out = products
        .call::<Value>("reserve", ("tea",))
        .await
        .unwrap_err();
    assert_eq!(
        out.downcast_ref::<OutOfStock>(),
        Some(&OutOfStock("tea is out of stock".to_owned()))
    );
    proxy.stop().await;
    cluster.shutdown().await;
}

/// Waits until `service` answers (with anything but `UnknownService`).
async fn wait_for(proxy: &ClusterRpcProxy, service: &str, method: &str, args: CallArgs) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match proxy
            .service(service)
            .with_timeout(Duration::from_secs(30))
            .call::<Value>(method, args.clone())
            .await
        {
            Err(RpcError::UnknownService(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(RpcError::Timeout(_)) => panic!("{service} did not answer"),
            _ => return,
        }
    }
}

/// One deployment on a fresh RabbitMQ vhost: `in_binary` run by the `error_services`
/// binary, the others by this process; what a caller of `orders` gets.
async fn deployed(in_binary: &[&str]) -> Option<[Outcome; 2]> {
    let mut cluster = TestCluster::rabbitmq().await?;
    let uri = cluster.amqp_uri().unwrap().to_owned();
    let mut args = vec!["run"];
    args.extend_from_slice(in_binary);
    let binary = ServiceProcess::start(
        &example_binary("error_services"),
        &args,
        &[("AMQP_URI", &uri)],
    );
    if !in_binary.contains(&"products") {
        cluster.start::<Products>().await;
    }
    if !in_binary.contains(&"orders") {
        cluster.start::<Orders>().await;
    }
    let proxy = cluster.proxy().await;
    wait_for(&proxy, "products", "get", CallArgs::new().arg(1)).await;
    wait_for(&proxy, "orders", "describe", CallArgs::new().arg(1)).await;
    let seen = ask_orders(&proxy).await;
    proxy.stop().await;
    drop(binary);
    cluster.shutdown().await;
    Some(seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_errors_whatever_the_deployment_across_processes() {
    for in_binary in [
        &["products", "orders"][..],
        &["products"][..],
        &["orders"][..],
    ] {
        let Some(seen) = deployed(in_binary).await else {
            return;
        };
        assert_eq!(seen, expected(), "{in_binary:?} in the service binary");
    }
}
