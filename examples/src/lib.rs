//! The example services of the nameko-rs documentation.
//!
//! Every service here has the exact names a Python nameko client expects, so any nameko
//! client (the `nameko` command, Python's `ClusterRpcProxy`, or a Rust proxy) can call
//! them:
//!
//! | service | methods |
//! |---|---|
//! | `service_x`, `service_y` | [`ServiceX::remote_method`] calls [`ServiceY::append_identifier`] |
//! | `calculator` | `add`, `multiply`, `divide` (an expected `ValueError` on division by zero) |
//! | `user_service` | `calculate_user_score`, using `calculator.multiply` |
//! | `payment_service`, `inventory_service`, `email_service` | the three steps of an order |
//! | `order_service` | `process_order_parallel`: the three steps in parallel, then an `order_placed` event |
//! | `audit_service` | `log_action`, reading `user_id` and `correlation_id` from the caller's context |
//! | `notification_service` | handles `order_placed` events; `sent()` lists them |
//! | `http_service` | HTTP (`#[http]`): the handlers of nameko's HTTP documentation, at `WEB_SERVER_ADDRESS` |
//! | `websocket_service` | WebSocket RPC (`#[ws_rpc]`) at `/ws`: `echo`, `subscribe`, `unsubscribe`, `subscriptions`; `POST /broadcast/<channel>`; `order_placed` events pushed to channel `orders`; a page at `GET /` |
//! | `flaky_service` | handles `jobs`' `job_submitted` events, failing `fail_times` times: retried after 1, 2, 4 s, then dead-lettered; `handled()` lists `{"id", "attempts"}` |
//! | `authors_service` | `create_author`, `get_author`, `list_authors`, `create_author_then_fail`, `rename_author`: a table on SQLite (by default), PostgreSQL or MariaDB |
//!
//! Run them with `cargo run --example cluster` (on RabbitMQ when `AMQP_URI` is set, on
//! the in-process broker otherwise), or see `cargo run --example quickstart`.

pub mod audit;
pub mod authors;
pub mod calculator;
pub mod flaky;
pub mod http_service;
pub mod notifications;
pub mod orders;
pub mod service_x_y;
pub mod users;
pub mod websocket;

pub use audit::AuditService;
pub use authors::AuthorsService;
pub use calculator::{Calculator, CalculatorClient};
pub use flaky::FlakyService;
pub use http_service::HttpService;
pub use notifications::NotificationService;
pub use orders::{
    EmailService, EmailServiceClient, InventoryService, InventoryServiceClient, OrderPlaced,
    OrderService, OrderServiceClient, PaymentService, PaymentServiceClient,
};
pub use service_x_y::{ServiceX, ServiceXClient, ServiceY, ServiceYClient};
pub use users::{UserService, UserServiceClient};
pub use websocket::WebsocketService;

use nameko::config::Config;

/// The examples' configuration: `AMQP_URI` from the environment, when it is set (connect
/// to it with [`nameko::connect_or_memory`], which picks the in-process broker when it is
/// not).
#[must_use]
pub fn config_from_env() -> Config {
    match std::env::var("AMQP_URI") {
        Ok(uri) => Config::new().with("AMQP_URI", uri),
        Err(_) => Config::new(),
    }
}
