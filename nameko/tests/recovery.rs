//! Recovery from broker faults, deterministic on the in-memory broker (which models what
//! the RabbitMQ transport does): connections dropped and a broker restart with calls and
//! events in flight, replies lost to a reply queue that expired during an outage, and
//! reply queues lost under their callers.

use std::sync::Mutex;
use std::time::Duration;

use nameko::memory::MemoryBroker;
use nameko::prelude::*;
use nameko::testing::TestCluster;
use nameko::transport::Transport as _;

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

#[derive(Dependencies)]
struct Relay {
    worker: RpcProxy,
}

#[service(name = "relay")]
impl Relay {
    #[rpc]
    async fn relay(&self, n: i64, millis: u64) -> Result<i64, RpcError> {
        self.worker.call("work", (n, millis)).await
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
    let queue = proxy.reply_queue();
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

/// The reply queue of a caller is deleted under it (as a classic queue is lost with the
/// cluster node it lived on): the calls waiting on it fail at once with `RepliesLost`,
/// and the caller (a standalone proxy, and a service's `RpcProxy`) moves to a fresh reply
/// queue, declared as nameko declares reply queues, for the calls that follow.
#[tokio::test(start_paused = true)]
async fn a_lost_reply_queue_fails_its_calls_at_once_and_is_replaced() {
    let broker = MemoryBroker::new();
    let mut cluster = TestCluster::on_broker(broker.clone()).with_config("RPC_TIMEOUT", 3600);
    cluster.start::<Worker>().await;
    cluster.start::<Relay>().await;
    let proxy = cluster.proxy().await;
    let direct = proxy
        .service("worker")
        .call_async::<i64>("work", (1, 1_000_000))
        .await
        .unwrap();
    let relayed = proxy
        .service("relay")
        .call_async::<i64>("relay", (2, 1_000_000))
        .await
        .unwrap();
    // Both requests reach the worker: the relay's own call is waiting on its queue.
    tokio::time::timeout(Duration::from_secs(1), async {
        while broker.queue("rpc-worker").map(|q| q.unacked) != Some(2) {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the worker took both requests");
    let proxy_queue = proxy.reply_queue();
    let relay_queue = broker
        .queues()
        .into_iter()
        .map(|q| q.name)
        .find(|name| name.starts_with("rpc.reply-relay-"))
        .expect("the relay's reply queue");
    let lost_queues = [proxy_queue.clone(), relay_queue.clone()];
    let admin = broker.connect();
    let started = tokio::time::Instant::now();
    // The relay's call to the worker fails at once; the relay re-raises it to the proxy.
    admin.delete_queue(&relay_queue).await.unwrap();
    let error = relayed.result().await.unwrap_err();
    assert_eq!(
        error.remote().map(|r| r.exc_type.as_str()),
        Some("ReplyQueueExpiredWithPendingReplies"),
        "{error:?}"
    );
    // The proxy's own call fails at once when its reply queue goes.
    admin.delete_queue(&proxy_queue).await.unwrap();
    match direct.result().await.unwrap_err() {
        RpcError::RepliesLost(ids) => assert_eq!(ids.len(), 1),
        other => panic!("expected RepliesLost, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "failed at once, not at the timeout: {:?}",
        started.elapsed()
    );
    // New calls work, through fresh reply queues declared as nameko declares them.
    let n: i64 = proxy.service("worker").call("work", (5, 0)).await.unwrap();
    assert_eq!(n, 5);
    let n: i64 = proxy.service("relay").call("relay", (6, 0)).await.unwrap();
    assert_eq!(n, 6);
    let fresh = proxy.reply_queue();
    assert!(!lost_queues.contains(&fresh), "a new name: {fresh}");
    assert!(fresh.starts_with("rpc.reply-standalone_rpc_proxy-"));
    let reply_queues: Vec<_> = broker
        .queues()
        .into_iter()
        .filter(|q| q.name.starts_with("rpc.reply-"))
        .collect();
    assert_eq!(
        reply_queues.len(),
        2,
        "one fresh queue each, the lost ones gone"
    );
    for queue in &reply_queues {
        assert!(!lost_queues.contains(&queue.name));
        assert!(queue.durable && !queue.exclusive && !queue.auto_delete);
        assert_eq!(
            queue.arguments.get("x-expires"),
            Some(&nameko::transport::FieldValue::I32(300_000))
        );
    }
    let key = fresh.trim_start_matches("rpc.reply-standalone_rpc_proxy-");
    assert!(
        broker
            .bindings()
            .iter()
            .any(|b| b.queue == fresh && b.exchange == "nameko-rpc" && b.routing_key == key)
    );
    cluster.shutdown().await;
}

/// The caller's connection drops and its reply queue is unavailable when it reconnects,
/// as a classic queue is when the cluster node it lived on (and the caller was connected
/// to) goes down: the call waiting fails at once with `RepliesLost`, and the caller moves
/// to a fresh reply queue for the calls that follow.
#[tokio::test(start_paused = true)]
async fn a_reply_queue_lost_with_its_node_is_replaced_after_reconnecting() {
    let broker = MemoryBroker::new();
    let mut cluster = TestCluster::on_broker(broker.clone()).with_config("RPC_TIMEOUT", 3600);
    cluster.start::<Worker>().await;
    let proxy = cluster.proxy().await;
    let pending = proxy
        .service("worker")
        .call_async::<i64>("work", (1, 1_000_000))
        .await
        .unwrap();
    let lost = proxy.reply_queue();
    broker.set_available(false);
    broker.drop_all_connections();
    assert!(broker.set_queue_down(&lost, true));
    let started = tokio::time::Instant::now();
    broker.set_available(true);
    match pending.result().await.unwrap_err() {
        RpcError::RepliesLost(ids) => assert_eq!(ids.len(), 1),
        other => panic!("expected RepliesLost, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failed once reconnected, not at the timeout: {:?}",
        started.elapsed()
    );
    let n: i64 = proxy.service("worker").call("work", (5, 0)).await.unwrap();
    assert_eq!(n, 5);
    let fresh = proxy.reply_queue();
    assert_ne!(fresh, lost);
    assert_eq!(broker.queue(&fresh).map(|q| q.consumers), Some(1));
    // Back up, the lost queue is not consumed (nor declared again): it expires unused.
    broker.set_queue_down(&lost, false);
    broker.drop_all_connections();
    let n: i64 = proxy.service("worker").call("work", (6, 0)).await.unwrap();
    assert_eq!(n, 6);
    assert_eq!(broker.queue(&lost).map(|q| q.consumers), Some(0));
    tokio::time::sleep(Duration::from_secs(301)).await;
    assert!(!broker.queue_exists(&lost), "the lost queue expired");
    cluster.shutdown().await;
}
