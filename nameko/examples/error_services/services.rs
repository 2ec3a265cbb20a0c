//! `products` fails with two errors, and `orders` lets them propagate: one error as
//! callers get it by default (nameko's `RemoteError`), one that opted in to come back
//! typed (`#[nameko(deserialize_to_instance)]`, Python's `@deserialize_to_instance`).

use nameko::prelude::*;

/// Not registered: a caller of `products` gets a `RemoteError` with `exc_type`
/// `ProductNotFound`, and a service that lets it propagate raises nameko's `RemoteError`
/// (`"ProductNotFound product 7 not found"`). (It could be rebuilt from its error dict,
/// with `RpcError::decode`, but callers do not get it typed unless it opts in.)
#[derive(Debug, NamekoError)]
#[nameko(
    exc_path = "products.ProductNotFound",
    display = "product {0} not found"
)]
pub(crate) struct ProductNotFound(pub String);

/// Registered: a caller gets it back typed (`RpcError::Registered`), and a service that
/// lets it propagate raises it as is, `exc_type` `OutOfStock`.
#[derive(Debug, PartialEq, Eq, NamekoError)]
#[nameko(
    exc_path = "products.OutOfStock",
    deserialize_to_instance,
    display = "{0}"
)]
pub(crate) struct OutOfStock(pub String);

/// The products.
#[derive(Debug, Dependencies)]
pub(crate) struct Products;

#[service(name = "products")]
impl Products {
    /// There are no products: `ProductNotFound(id)`.
    #[rpc(expected_exceptions = [ProductNotFound])]
    pub(crate) async fn get(&self, id: u64) -> Result<Value, ProductNotFound> {
        Err(ProductNotFound(id.to_string()))
    }

    /// Nothing is in stock: `OutOfStock("<sku> is out of stock")`.
    #[rpc(expected_exceptions = [OutOfStock])]
    pub(crate) async fn reserve(&self, sku: String) -> Result<Value, OutOfStock> {
        Err(OutOfStock(format!("{sku} is out of stock")))
    }
}

/// Orders, which ask `products` and let its errors propagate.
#[derive(Debug, Dependencies)]
pub(crate) struct Orders {
    products: RpcProxy,
}

#[service(name = "orders")]
impl Orders {
    /// `products.get(id)`, its error propagated.
    #[rpc]
    pub(crate) async fn describe(&self, id: u64) -> Result<Value, RpcError> {
        self.products.call("get", (id,)).await
    }

    /// `products.reserve(sku)`, its error propagated.
    #[rpc]
    pub(crate) async fn place(&self, sku: String) -> Result<Value, RpcError> {
        self.products.call("reserve", (sku,)).await
    }
}
