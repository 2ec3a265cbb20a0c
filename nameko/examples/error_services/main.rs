//! Two services whose errors propagate, as one binary that can run either or both.
//!
//! ```text
//! cargo run -p nameko --example error_services -- run --broker amqp://guest:guest@localhost:5672/
//! cargo run -p nameko --example error_services -- run products --broker ...
//! cargo run -p nameko --example error_services -- call orders.describe 7 --broker ...
//!   RemoteError: ProductNotFound product 7 not found
//! cargo run -p nameko --example error_services -- call orders.place '"tea"' --broker ...
//!   OutOfStock: tea is out of stock
//! ```
//!
//! Whether `products` runs in this process or another, `orders` raises the same errors:
//! the error registry does not depend on which services run.

mod services;

fn main() -> std::process::ExitCode {
    nameko::cli::main(nameko::services![services::Products, services::Orders])
}
