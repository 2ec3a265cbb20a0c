//! The starter crate builds with `nameko` and `tokio` alone, and its services work: on the
//! in-process broker, and in unit tests.

use nameko::prelude::*;
use nameko::testing::{EventDispatcherMock, TestCluster, entrypoint_waiter, worker_factory};
use nameko_starter::{
    Catalog, CatalogClient, Checkout, CheckoutClient, ItemNotFound, Ledger, Order, Prices,
};

fn prices() -> Prices {
    Prices::new([("tea", 2.5), ("cake", 4.0)])
}

#[test]
fn the_only_dependencies_are_nameko_and_tokio() {
    let manifest = include_str!("../Cargo.toml");
    let section = manifest
        .split("[dependencies]")
        .nth(1)
        .expect("a [dependencies] section");
    let section = section.split("\n[").next().unwrap_or(section);
    let mut names: Vec<&str> = section
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split(['=', '.']).next().map(str::trim))
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["nameko", "tokio"], "{section}");
    let dev = manifest
        .split("[dev-dependencies]")
        .nth(1)
        .and_then(|s| s.split("\n[").next())
        .unwrap_or_default();
    let dev: Vec<&str> = dev
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        dev,
        [r#"nameko = { workspace = true, features = ["testing"] }"#],
        "tests need nothing but nameko's testing feature"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_run_together_with_their_state() {
    let mut cluster = TestCluster::memory().with_state(prices());
    cluster.start::<Catalog>().await;
    cluster.start::<Checkout>().await;
    let ledger = cluster.start::<Ledger>().await;
    let recorded = entrypoint_waiter(&ledger, "record");
    let proxy = cluster.proxy().await;

    let checkout: CheckoutClient = proxy.client();
    let catalog: CatalogClient = proxy.client();
    let order = Order {
        id: 1,
        items: vec!["tea".to_owned(), "cake".to_owned(), "tea".to_owned()],
    };
    let total = checkout.total(order).await.unwrap();
    assert_eq!(total, 9.0);
    let event = recorded.wait().await.unwrap();
    assert_eq!(event.result.unwrap(), json!({"id": 1, "total": 9.0}));

    match catalog.price("scone".to_owned()).await {
        Err(CallError::Service(missing)) => {
            assert_eq!(missing, ItemNotFound("no item scone".to_owned()));
        }
        other => panic!("expected ItemNotFound, got {other:?}"),
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_service_without_its_state_does_not_start() {
    let mut cluster = TestCluster::memory();
    let catalog = cluster.container::<Catalog>().await;
    let error = catalog.start().await.unwrap_err().to_string();
    assert!(
        error.contains("no state of type `nameko_starter::Prices` was given at startup"),
        "{error}"
    );
    // The container crashed on purpose: dropping the cluster does not check it.
    drop(cluster);
}

#[tokio::test]
async fn unit_tests_give_state_and_mocks() {
    let catalog = worker_factory::<Catalog>()
        .with_state(prices())
        .with_value("lookups", nameko_starter::Lookups(0))
        .build()
        .unwrap();
    assert_eq!(catalog.price("cake".to_owned()).await.unwrap(), 4.0);

    let prices = CatalogClient::mock().price(|_| Ok(1.5));
    let events = EventDispatcherMock::new();
    let checkout = worker_factory::<Checkout>()
        .with("catalog", prices.clone())
        .with("events", events.clone())
        .build()
        .unwrap();
    let order = Order {
        id: 2,
        items: vec!["tea".to_owned(), "tea".to_owned()],
    };
    assert_eq!(checkout.total(order).await.unwrap(), 3.0);
    prices.assert_called_with("price", ("tea",));
    events.assert_dispatched_once("order_totalled", json!({"id": 2, "total": 3.0}));
}
