//! A service crate that depends on `nameko` and `tokio` alone, the way README's
//! "Install" section starts one: services with typed arguments, typed errors, shared
//! state, a provider of its own, proxies, events and a timer, and a binary with nameko's
//! command line (`src/main.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use nameko::dependency::{Dependency, DependencyProvider, ProviderError};
use nameko::prelude::*;
use nameko::serde::{Deserialize, Serialize};

/// The price list every worker of `catalog` shares, given at startup.
#[derive(Debug, Clone, Default)]
pub struct Prices {
    items: Arc<Vec<(String, f64)>>,
}

impl Prices {
    /// A price list.
    #[must_use]
    pub fn new(items: impl IntoIterator<Item = (&'static str, f64)>) -> Self {
        Self {
            items: Arc::new(
                items
                    .into_iter()
                    .map(|(name, price)| (name.to_owned(), price))
                    .collect(),
            ),
        }
    }

    fn get(&self, item: &str) -> Option<f64> {
        self.items.iter().find(|(n, _)| n == item).map(|(_, p)| *p)
    }
}

/// No such item: Python callers see `catalog.ItemNotFound`, Rust callers get it typed.
#[derive(Debug, PartialEq, Eq, NamekoError)]
#[nameko(
    exc_path = "catalog.ItemNotFound",
    deserialize_to_instance,
    display = "{0}"
)]
pub struct ItemNotFound(pub String);

/// How many lookups this container served: a provider written with plain `async fn`s.
#[derive(Debug, Clone, Copy)]
pub struct Lookups(pub u64);

/// Provides [`Lookups`].
#[derive(Debug, Default)]
pub struct LookupCounter {
    served: Arc<AtomicU64>,
}

impl DependencyProvider for LookupCounter {
    type Output = Lookups;

    async fn get_dependency(&self, _worker: &WorkerContext) -> Result<Lookups, ProviderError> {
        Ok(Lookups(self.served.fetch_add(1, Ordering::Relaxed)))
    }
}

impl Dependency for Lookups {
    type Provider = LookupCounter;

    fn provider(_field: &'static str) -> LookupCounter {
        LookupCounter::default()
    }
}

/// `catalog`: prices.
#[derive(Debug, Dependencies)]
pub struct Catalog {
    prices: State<Prices>,
    lookups: Lookups,
}

#[service(name = "catalog")]
impl Catalog {
    /// The price of `item`.
    #[rpc(expected_exceptions = [ItemNotFound])]
    pub async fn price(&self, item: String) -> Result<f64, ItemNotFound> {
        nameko::tracing::debug!(%item, lookups = self.lookups.0, "price asked");
        self.prices
            .get(&item)
            .ok_or_else(|| ItemNotFound(format!("no item {item}")))
    }

    /// Runs every hour; nothing to do in this example.
    #[timer(interval = 3600)]
    pub async fn refresh(&self) {}
}

/// An order, deserialized from the call's JSON.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(crate = "nameko::serde")]
pub struct Order {
    /// The order's id.
    pub id: u64,
    /// The items, by name.
    pub items: Vec<String>,
}

/// `checkout`: totals orders with `catalog`'s prices, then tells who listens.
#[derive(Debug, Dependencies)]
pub struct Checkout {
    catalog: CatalogClient,
    events: EventDispatcher,
}

#[service(name = "checkout")]
impl Checkout {
    /// The order's total; an unknown item fails the call with `catalog`'s `ItemNotFound`.
    #[rpc]
    pub async fn total(&self, order: Order) -> Result<f64, ServiceError> {
        let mut total = 0.0;
        for item in &order.items {
            let price = self.catalog.price(item.clone()).await?;
            total += price;
        }
        self.events
            .dispatch("order_totalled", json!({"id": order.id, "total": total}))
            .await?;
        Ok(total)
    }
}

/// `ledger`: records the totals `checkout` announces.
#[derive(Debug, Dependencies)]
pub struct Ledger;

#[service(name = "ledger")]
impl Ledger {
    /// Handles `checkout`'s `order_totalled` events.
    #[event_handler("checkout", "order_totalled")]
    pub async fn record(&self, event: Value) -> Value {
        event
    }
}
