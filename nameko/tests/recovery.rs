//! Recovery from broker faults, deterministic on the in-memory broker (which models what
//! the RabbitMQ transport does): connections dropped and a broker restart with calls and
//! events in flight, and replies lost to a reply queue that expired during an outage.

use std::sync::Mutex;
use std::time::Duration;

use nameko::memory::MemoryBroker;
use nameko::prelude::*;
use nameko::testing::TestCluster;

static HANDLED: Mutex<Vec<i64>> = Mutex::new(Vec::new());

#[derive(Dependencies)]
struct Worker;

#[service(name = "worker")]
impl Worker {
    #[rpc]
    async fn work(&self, n: i64, millis: u64) -> i64 {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        n
    }

    #[event_handler("feeder", "item")]
    async fn on_item(&self, item: Value) {
        HANDLED
            .lock()
            .unwrap()
            .push(item["n"].as_i64().unwrap_or(-1));
    }
}

async fn calls_in_flight(proxy: &ClusterRpcProxy, count: i64) -> Vec<(i64, RpcReply<i64>)> {
    let worker = proxy.service("worker");
    let mut replies = Vec::new();
    for n in 0..count {
        replies.push((n, worker.call_async::<i64>("work", (n, 20)).await.unwrap()));
    }
    replies
}

/// Every call ends: answered with its own result, or failed with a clear error; none
/// hangs past its timeout.
async fn settle_all(replies: Vec<(i64, RpcReply<i64>)>) -> (usize, Vec<String>) {
    let mut answered = 0;
    let mut failed = Vec::new();
    for (n, reply) in replies {
        match reply.result().await {
            Ok(value) => {
                assert_eq!(value, n);
                answered += 1;
            }
            Err(error) => failed.push(error.to_string()),
        }
    }
    (answered, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_recover_with_calls_in_flight() {
    let broker = MemoryBroker::new();
    let mut cluster = TestCluster::on_broker(broker.clone()).with_config("RPC_TIMEOUT", 10);
    cluster.start::<Worker>().await;
    let proxy = cluster.proxy().await;
    let replies = calls_in_flight(&proxy, 100).await;
    broker.drop_all_connections();
    let (answered, failed) = tokio::time::timeout(Duration::from_secs(30), settle_all(replies))
        .await
        .expect("no call hangs");
    assert_eq!(answered + failed.len(), 100);
    assert!(
        failed
            .iter()
            .all(|e| e.contains("no reply within") || e.contains("disconnected")),
        "{failed:?}"
    );
    // The service serves new calls once its connection is back.
    let n: i64 = proxy.service("worker").call("work", (7, 0)).await.unwrap();
    assert_eq!(n, 7);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_keeps_reliable_events_and_the_service_recovers() {
    let broker = MemoryBroker::new();
    let mut cluster = TestCluster::on_broker(broker.clone()).with_config("RPC_TIMEOUT", 10);
    let worker = cluster.start::<Worker>().await;
    let proxy = cluster.proxy().await;
    // Events wait in the durable handler queue while the service is stopped...
    worker.stop().await.unwrap();
    for n in 0..50 {
        cluster.dispatch("feeder", "item", json!({"n": n})).await;
    }
    // ...survive a broker restart (durable queue, persistent messages)...
    broker.restart();
    // ...and are all handled once the service is back.
    cluster.start::<Worker>().await;
    cluster.run_until_idle().await.unwrap();
    let mut handled: Vec<i64> = HANDLED.lock().unwrap().clone();
    handled.sort_unstable();
    handled.dedup();
    assert_eq!(
        handled,
        (0..50).collect::<Vec<_>>(),
        "every event handled at least once"
    );

    let replies = calls_in_flight(&proxy, 50).await;
    broker.restart();
    let (answered, failed) = tokio::time::timeout(Duration::from_secs(30), settle_all(replies))
        .await
        .expect("no call hangs");
    assert_eq!(answered + failed.len(), 50, "{failed:?}");
    let n: i64 = proxy.service("worker").call("work", (3, 0)).await.unwrap();
    assert_eq!(n, 3);
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn replies_lost_to_an_expired_reply_queue_fail_at_once() {
    let broker = MemoryBroker::new();
    let mut cluster = TestCluster::on_broker(broker.clone()).with_config("RPC_TIMEOUT", 3600);
    cluster.start::<Worker>().await;
    let proxy = cluster.proxy().await;
    let pending = proxy
        .service("worker")
        .call_async::<i64>("work", (1, 1_000_000))
        .await
        .unwrap();
    // The broker goes away for longer than the reply queue's 5 minute x-expires.
    broker.set_available(false);
    broker.drop_all_connections();
    tokio::time::sleep(Duration::from_secs(301)).await;
    let queue = proxy.reply_queue().to_owned();
    assert!(
        !broker.queue_exists(&queue),
        "the unused reply queue expired"
    );
    broker.set_available(true);
    let started = tokio::time::Instant::now();
    match pending.result().await.unwrap_err() {
        RpcError::RepliesLost(ids) => assert_eq!(ids.len(), 1),
        other => panic!("expected RepliesLost, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "failed at reconnection, not at the timeout"
    );
    // The queue was declared again on reconnection: new calls work.
    let n: i64 = proxy.service("worker").call("work", (5, 0)).await.unwrap();
    assert_eq!(n, 5);
    cluster.shutdown().await;
}

/// A publish that fails because the connection dropped is retried as soon as the
/// connection is back, not after `RPC_RETRY_POLICY`'s first interval (2 s): calls made
/// during a short outage, and replies of workers that finish during it, go out right
/// after the reconnection.
#[tokio::test(start_paused = true)]
async fn failed_publishes_are_retried_as_soon_as_the_connection_is_back() {
    let broker = MemoryBroker::new();
    let mut cluster = TestCluster::on_broker(broker.clone()).with_config("RPC_TIMEOUT", 30);
    cluster.start::<Worker>().await;
    let proxy = cluster.proxy().await;
    broker.drop_all_connections();
    let started = tokio::time::Instant::now();
    let n: i64 = proxy.service("worker").call("work", (9, 0)).await.unwrap();
    assert_eq!(n, 9);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the request waited {:?} to be retried",
        started.elapsed()
    );
    cluster.shutdown().await;
}
