//! Loopback round-trip latency: guards against Nagle's algorithm (about 40 ms per round
//! trip when TCP_NODELAY is off).

mod common;

use std::time::{Duration, Instant};

use common::next;
use nameko_amqp::test_support::test_broker;
use nameko_transport::{
    ConsumeOptions, Message, Properties, PublishOptions, QueueOptions, Transport,
};

const ROUND_TRIPS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_to_delivery_round_trip_has_no_nagle_delay() {
    let Some(broker) = test_broker().await else {
        return;
    };
    broker
        .run("latency", |scope| async move {
            let t = scope.connect().await;
            let q = scope.queue("q");
            t.declare_queue(&q, QueueOptions::default().with_exclusive(true))
                .await
                .expect("declare");
            let mut consumer = t.consume(&q, ConsumeOptions::with_prefetch(10)).await.expect("consume");
            let body = r#"{"args": [1, 2], "kwargs": {}}"#;
            let mut confirmed = Vec::with_capacity(ROUND_TRIPS);
            let mut unconfirmed = Vec::with_capacity(ROUND_TRIPS);
            for i in 0..ROUND_TRIPS * 2 {
                let confirm = i % 2 == 0;
                let started = Instant::now();
                t.publish(
                    "",
                    &q,
                    Message::new(body, Properties::json()),
                    PublishOptions::default().with_confirm(confirm),
                )
                .await
                .expect("publish");
                let delivery = next(&mut consumer, 5).await;
                let elapsed = started.elapsed();
                delivery.ack().await.expect("ack");
                if confirm {
                    confirmed.push(elapsed);
                } else {
                    unconfirmed.push(elapsed);
                }
            }
            for (what, samples) in [("confirmed", &mut confirmed), ("unconfirmed", &mut unconfirmed)] {
                samples.sort();
                let median = samples[samples.len() / 2];
                let p90 = samples[samples.len() * 9 / 10];
                println!(
                    "{what} publish -> delivery over {} round trips: median {median:?}, p90 {p90:?}",
                    samples.len()
                );
                assert!(
                    median < Duration::from_millis(5),
                    "{what} median round trip {median:?}: is TCP_NODELAY off?"
                );
            }
        })
        .await;
}
