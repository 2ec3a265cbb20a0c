//! Measures RPC round trips per second through the in-memory broker, shaped like nameko
//! RPC: a request through the `nameko-rpc` topic exchange to the service queue, a reply
//! through the same exchange to the caller's reply queue, each delivery acked.
//!
//! ```text
//! cargo run --release -p nameko-memory --example rpc_throughput [ROUND_TRIPS] [IN_FLIGHT]
//! ```

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use nameko_memory::MemoryBroker;
use nameko_transport::{
    ConsumeOptions, ExchangeKind, ExchangeOptions, Message, Properties, PublishOptions,
    QueueOptions, Transport,
};
use tokio::sync::Semaphore;

const EXCHANGE: &str = "nameko-rpc";
const REPLY_QUEUE: &str = "rpc.reply-standalone_rpc_proxy-3f5e";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let total: usize = args.next().map_or(Ok(200_000), |a| a.parse())?;
    let in_flight: usize = args.next().map_or(Ok(1), |a| a.parse())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(total, in_flight))
}

async fn run(total: usize, in_flight: usize) -> Result<(), Box<dyn std::error::Error>> {
    let broker = MemoryBroker::new();
    let service = broker.connect();
    let client = broker.connect();
    for conn in [&service, &client] {
        conn.declare_exchange(EXCHANGE, ExchangeKind::Topic, ExchangeOptions::durable())
            .await?;
    }
    service
        .declare_queue("rpc-calc", QueueOptions::durable())
        .await?;
    service.bind_queue("rpc-calc", EXCHANGE, "calc.*").await?;
    client
        .declare_queue(REPLY_QUEUE, QueueOptions::default().with_expires(300_000))
        .await?;
    client
        .bind_queue(REPLY_QUEUE, EXCHANGE, REPLY_QUEUE)
        .await?;

    let mut requests = service
        .consume("rpc-calc", ConsumeOptions::with_prefetch(10))
        .await?;
    let server = tokio::spawn(async move {
        while let Some(Ok(delivery)) = requests.next().await {
            let (message, _info, acker) = delivery.into_parts();
            let props = Properties::json()
                .with_correlation_id(message.properties.correlation_id.unwrap_or_default());
            let reply = Message::new(&b"{\"result\": 3, \"error\": null}"[..], props);
            let key = message.properties.reply_to.unwrap_or_default();
            if service
                .publish(EXCHANGE, &key, reply, PublishOptions::default())
                .await
                .is_err()
            {
                break;
            }
            if acker.ack().await.is_err() {
                break;
            }
        }
    });

    let mut replies = client
        .consume(REPLY_QUEUE, ConsumeOptions::default())
        .await?;
    let window = Arc::new(Semaphore::new(in_flight));
    let client = Arc::new(client);
    let started = Instant::now();
    let sender = {
        let (client, window) = (Arc::clone(&client), Arc::clone(&window));
        tokio::spawn(async move {
            let body = bytes::Bytes::from_static(br#"{"args": [1, 2], "kwargs": {}}"#);
            for n in 0..total {
                let Ok(permit) = window.acquire().await else {
                    return;
                };
                permit.forget();
                let props = Properties::json()
                    .with_correlation_id(n.to_string())
                    .with_reply_to(REPLY_QUEUE);
                let options = PublishOptions::default().with_mandatory(true);
                if client
                    .publish(
                        EXCHANGE,
                        "calc.add",
                        Message::new(body.clone(), props),
                        options,
                    )
                    .await
                    .is_err()
                {
                    return;
                }
            }
        })
    };
    for _ in 0..total {
        let Some(Ok(reply)) = replies.next().await else {
            return Err("the reply stream ended".into());
        };
        reply.ack().await?;
        window.add_permits(1);
    }
    let elapsed = started.elapsed();
    sender.await?;
    server.abort();
    #[allow(clippy::cast_precision_loss)]
    let rate = total as f64 / elapsed.as_secs_f64();
    println!("{total} round trips, {in_flight} in flight: {elapsed:.2?}, {rate:.0} round trips/s");
    Ok(())
}
