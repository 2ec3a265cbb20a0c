//! The quickstart: two services and a client, in one process.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! It starts `service_x` and `service_y`, calls `service_x.remote_method("hello")`
//! through a standalone cluster proxy and prints `hello-x-y`, then makes two calls with
//! `call_async`, both in flight at once. It runs on the in-process broker; set
//! `AMQP_URI=amqp://guest:guest@localhost:5672/` to run it on RabbitMQ instead.

use nameko::prelude::*;
use nameko_examples::{ServiceX, ServiceY};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = nameko_examples::config_from_env();
    let service_y = ServiceContainer::<ServiceY>::new(
        nameko::connect_or_memory(&config).await?,
        config.clone(),
    )?;
    let service_x = ServiceContainer::<ServiceX>::new(
        nameko::connect_or_memory(&config).await?,
        config.clone(),
    )?;
    service_y.start().await?;
    service_x.start().await?;

    let proxy = ClusterRpcProxy::start(nameko::connect_or_memory(&config).await?, &config).await?;
    let greeting: String = proxy
        .service("service_x")
        .call("remote_method", ("hello",))
        .await?;
    println!("{greeting}");

    // Two calls in flight at once; their results are awaited afterwards.
    let first = proxy
        .service("service_x")
        .call_async::<String>("remote_method", ("first",))
        .await?;
    let second = proxy
        .service("service_y")
        .call_async::<String>("append_identifier", ("second",))
        .await?;
    println!("{} {}", first.result().await?, second.result().await?);

    proxy.stop().await;
    service_x.stop().await?;
    service_y.stop().await?;
    Ok(())
}
