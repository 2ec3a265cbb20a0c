//! The quickstart: two services and a client, in one process.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! It starts `service_x` and `service_y`, calls `service_x.remote_method("hello")`
//! through the typed client `#[service]` generated for it, from a standalone cluster
//! proxy, and prints `hello-x-y`, then makes two deferred calls, both in flight at once. It runs on the in-process broker; set
//! `AMQP_URI=amqp://guest:guest@localhost:5672/` to run it on RabbitMQ instead.

use nameko::prelude::*;
use nameko_examples::{ServiceX, ServiceXClient, ServiceY, ServiceYClient};

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
    let service_x_client: ServiceXClient = proxy.client();
    let service_y_client: ServiceYClient = proxy.client();
    let greeting = service_x_client.remote_method("hello".to_owned()).await?;
    println!("{greeting}");

    // Two calls in flight at once; their results are awaited afterwards.
    let first = service_x_client
        .call_async()
        .remote_method("first".to_owned())
        .await?;
    let second = service_y_client
        .call_async()
        .append_identifier("second".to_owned())
        .await?;
    println!("{} {}", first.result().await?, second.result().await?);

    proxy.stop().await;
    service_x.stop().await?;
    service_y.stop().await?;
    Ok(())
}
