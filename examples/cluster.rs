//! Every example service in one process, until Ctrl-C or SIGTERM.
//!
//! ```text
//! cargo run --example cluster                                             # in-process broker
//! AMQP_URI=amqp://guest:guest@localhost:5672/ cargo run --example cluster # RabbitMQ
//! ```

fn main() {}
