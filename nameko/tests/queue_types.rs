//! `QUEUE_TYPE` on RabbitMQ: which queues are declared classic or quorum, as RabbitMQ
//! itself reports them (`rabbitmqctl list_queues name type`, or the management API), the
//! delivery limit of quorum queues, what cannot be quorum, and why both sides of a mixed
//! Python/Rust deployment must agree on a queue's type.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nameko::prelude::*;
use nameko::testing::TestCluster;
use nameko::transport::{Message, Properties, PublishOptions, QueueOptions, TransportError};

static PLACED: Mutex<Vec<Value>> = Mutex::new(Vec::new());
static RESTOCK_ATTEMPTS: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, NamekoError)]
#[nameko(
    exc_type = "RuntimeError",
    exc_path = "builtins.RuntimeError",
    display = "{0}"
)]
struct OutOfStock(String);

#[derive(Dependencies)]
struct Inventory;

#[service(name = "inventory_qt")]
impl Inventory {
    #[rpc]
    async fn stock(&self, item: String) -> String {
        format!("{item}: 3")
    }

    #[event_handler("orders_qt", "placed")]
    async fn on_placed(&self, order: Value) {
        PLACED.lock().unwrap().push(order);
    }

    #[event_handler("orders_qt", "placed", handler_type = broadcast, reliable_delivery = false)]
    async fn on_placed_everywhere(&self, _order: Value) {}

    #[consume(queue = "restock-qt", requeue_on_error = true)]
    async fn restock(&self, _body: Value) -> Result<(), OutOfStock> {
        RESTOCK_ATTEMPTS.fetch_add(1, Ordering::SeqCst);
        Err(OutOfStock("the supplier is out of stock".into()))
    }
}

/// A service whose one transient handler is named for a quorum queue.
#[derive(Dependencies)]
struct Misconfigured;

#[service(name = "misconfigured_qt")]
impl Misconfigured {
    #[event_handler("orders_qt", "placed", reliable_delivery = false)]
    async fn on_placed(&self, _order: Value) {}
}

/// The queue types of the cluster's virtual host, reply queues summed up as one entry.
async fn queue_types(cluster: &TestCluster) -> Vec<(String, String)> {
    let vhost = cluster.vhost().expect("RabbitMQ");
    let mut types: Vec<(String, String)> = vhost
        .queue_types()
        .await
        .expect("listing the queues")
        .into_iter()
        .map(|(name, kind)| {
            if name.starts_with("rpc.reply-") {
                ("rpc.reply-*".to_owned(), kind)
            } else if name.starts_with("evt-orders_qt-placed--inventory_qt.on_placed_everywhere-") {
                (
                    "evt-orders_qt-placed--inventory_qt.on_placed_everywhere-*".to_owned(),
                    kind,
                )
            } else {
                (name, kind)
            }
        })
        .collect();
    types.sort();
    types.dedup();
    types
}

fn listed(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .collect();
    pairs.sort();
    pairs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_are_classic_by_default_as_nameko_declares_them() {
    let Some(cluster) = TestCluster::rabbitmq().await else {
        return;
    };
    let mut cluster = cluster;
    cluster.start::<Inventory>().await;
    let proxy = cluster.proxy().await;
    let stock: String = proxy
        .service("inventory_qt")
        .call("stock", ("bolts",))
        .await
        .expect("stock");
    assert_eq!(stock, "bolts: 3");
    let types = queue_types(&cluster).await;
    println!("{types:?}");
    assert_eq!(
        types,
        listed(&[
            ("evt-orders_qt-placed--inventory_qt.on_placed", "classic"),
            (
                "evt-orders_qt-placed--inventory_qt.on_placed_everywhere-*",
                "classic"
            ),
            ("restock-qt", "classic"),
            ("rpc-inventory_qt", "classic"),
            ("rpc.reply-*", "classic"),
        ])
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_queues_are_declared_where_configured_and_reply_queues_stay_classic() {
    let Some(cluster) = TestCluster::rabbitmq().await else {
        return;
    };
    let mut cluster = cluster
        .with_config(
            "QUEUE_TYPE",
            json!({
                "default": "quorum",
                "inventory_qt.restock": {"type": "quorum", "delivery_limit": 2},
            }),
        )
        .with_config("REQUEUE_DELAY", 0.05);
    cluster.start::<Inventory>().await;
    // The service works on quorum queues: calls, events.
    let proxy = cluster.proxy().await;
    let stock: String = proxy
        .service("inventory_qt")
        .call("stock", ("nuts",))
        .await
        .expect("stock");
    assert_eq!(stock, "nuts: 3");
    let types = queue_types(&cluster).await;
    println!("{types:?}");
    assert_eq!(
        types,
        listed(&[
            ("evt-orders_qt-placed--inventory_qt.on_placed", "quorum"),
            // Auto-deleted with its consumer: quorum queues cannot be.
            (
                "evt-orders_qt-placed--inventory_qt.on_placed_everywhere-*",
                "classic"
            ),
            ("restock-qt", "quorum"),
            ("rpc-inventory_qt", "quorum"),
            // The caller's reply queue: one per process.
            ("rpc.reply-*", "classic"),
        ])
    );

    cluster
        .dispatch("orders_qt", "placed", json!({"order": "q-1"}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !PLACED.lock().unwrap().contains(&json!({"order": "q-1"})) {
        assert!(Instant::now() < deadline, "the event was not handled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The delivery limit: a message that always fails is delivered once and redelivered
    // twice, then dropped by RabbitMQ.
    let transport = cluster.connect().await;
    transport
        .publish(
            "",
            "restock-qt",
            Message::new(r#"{"item": "washers"}"#, Properties::json()),
            PublishOptions::default(),
        )
        .await
        .expect("publish");
    let deadline = Instant::now() + Duration::from_secs(10);
    while RESTOCK_ATTEMPTS.load(Ordering::SeqCst) < 3 {
        assert!(
            Instant::now() < deadline,
            "{} attempts",
            RESTOCK_ATTEMPTS.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        RESTOCK_ATTEMPTS.load(Ordering::SeqCst),
        3,
        "delivered once, redelivered twice (delivery_limit: 2), then dropped"
    );
    let left = transport
        .declare_queue("restock-qt", QueueOptions::passive())
        .await
        .expect("the queue");
    assert_eq!(left.message_count, 0);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_queue_named_for_quorum_refuses_to_start_saying_why() {
    let Some(cluster) = TestCluster::rabbitmq().await else {
        return;
    };
    let mut cluster = cluster.with_config(
        "QUEUE_TYPE",
        json!({"default": "quorum", "misconfigured_qt.on_placed": "quorum"}),
    );
    let container = cluster.container::<Misconfigured>().await;
    let error = container
        .start()
        .await
        .expect_err("quorum queues cannot be auto-deleted");
    let text = format!("{error:#} {error:?}");
    assert!(
        text.contains("cannot be a quorum queue") && text.contains("auto-deleted"),
        "{text}"
    );
    // The crashed container is dropped with the cluster, whose shutdown would report it.
    drop(container);
    drop(cluster);
}

/// A queue's type is fixed when it is declared: declaring it again with another type
/// fails, both ways. Python nameko declares every queue without `x-queue-type`; RabbitMQ
/// 3.10 takes that for classic, so it refuses a Python instance's declaration of a queue
/// Rust made quorum, and a Rust declaration of quorum on a queue Python made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_keeps_the_type_it_was_declared_with() {
    let Some(cluster) = TestCluster::rabbitmq().await else {
        return;
    };
    let transport = cluster.connect().await;
    let quorum = QueueOptions::durable().with_argument("x-queue-type", "quorum");
    transport
        .declare_queue("made-classic", QueueOptions::durable())
        .await
        .expect("classic");
    let error = transport
        .declare_queue("made-classic", quorum.clone())
        .await
        .expect_err("a classic queue cannot become quorum");
    assert!(
        matches!(error, TransportError::PreconditionFailed(_)),
        "{error:?}"
    );
    assert!(error.to_string().contains("x-queue-type"), "{error}");
    println!("quorum over classic: {error}");

    let transport = cluster.connect().await;
    transport
        .declare_queue("made-quorum", quorum)
        .await
        .expect("quorum");
    let error = transport
        .declare_queue("made-quorum", QueueOptions::durable())
        .await
        .expect_err("a declaration without x-queue-type is classic");
    assert!(
        matches!(error, TransportError::PreconditionFailed(_)),
        "{error:?}"
    );
    println!("classic (as Python nameko declares) over quorum: {error}");
    cluster.shutdown().await;
}
