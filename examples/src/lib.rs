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
//!
//! Run them with `cargo run --example cluster` (on RabbitMQ when `AMQP_URI` is set, on
//! the in-process broker otherwise), or see `cargo run --example quickstart`.

pub mod audit;
pub mod calculator;
pub mod notifications;
pub mod orders;
pub mod service_x_y;
pub mod users;

pub use audit::AuditService;
pub use calculator::Calculator;
pub use notifications::NotificationService;
pub use orders::{EmailService, InventoryService, OrderService, PaymentService};
pub use service_x_y::{ServiceX, ServiceY};
pub use users::UserService;

use std::sync::{Arc, OnceLock};

use nameko::config::Config;
use nameko::transport::{Transport, TransportError};

/// The examples' configuration: `AMQP_URI` from the environment (RabbitMQ), or the
/// in-process broker (`memory://`) when it is unset.
#[must_use]
pub fn config_from_env() -> Config {
    let uri = std::env::var("AMQP_URI").unwrap_or_else(|_| "memory://".to_owned());
    Config::new().with("AMQP_URI", uri)
}

/// A new connection to the broker of `config`: RabbitMQ for `amqp://`, the one
/// in-process broker of this process for `memory://`.
///
/// # Errors
///
/// If RabbitMQ cannot be reached.
pub async fn connect(config: &Config) -> Result<Arc<dyn Transport>, TransportError> {
    static BROKER: OnceLock<nameko::memory::MemoryBroker> = OnceLock::new();
    match config.amqp_uri().ok().flatten() {
        Some(uri) if uri.starts_with("amqp") => {
            Ok(Arc::new(nameko::amqp::AmqpTransport::connect(uri).await?))
        }
        _ => Ok(Arc::new(
            BROKER
                .get_or_init(nameko::memory::MemoryBroker::new)
                .connect(),
        )),
    }
}
