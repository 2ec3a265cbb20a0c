//! Graceful stop, on the in-memory broker and on RabbitMQ: running workers finish and are
//! acked, prefetched requests that had not started go back to the queue, and another
//! instance answers them; nothing is lost and nothing runs twice.

use std::sync::Mutex;
use std::time::Duration;

use nameko::prelude::*;
use nameko::testing::{TestCluster, cluster_tests};

static PROCESSED: Mutex<Vec<u64>> = Mutex::new(Vec::new());

#[derive(Dependencies)]
struct Slow;

#[service(name = "slow")]
impl Slow {
    #[rpc]
    async fn work(&self, n: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        PROCESSED.lock().unwrap().push(n);
        n
    }
}

cluster_tests! {
    async fn stop_with_workers_in_flight_loses_and_duplicates_nothing(cluster: TestCluster) {
        let base: u64 = if cluster.is_memory() { 0 } else { 1000 };
        let mut cluster = cluster.with_config("max_workers", 4).with_config("PREFETCH_COUNT", 8).with_config("RPC_TIMEOUT", 20);
        let first = cluster.start::<Slow>().await;
        let proxy = cluster.proxy().await;
        let slow = proxy.service("slow");
        let mut replies = Vec::new();
        for n in base..base + 20 {
            replies.push((n, slow.call_async::<u64>("work", (n,)).await.unwrap()));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while first.running_workers() < 4 {
            assert!(tokio::time::Instant::now() < deadline, "workers never started");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        first.stop().await.unwrap();
        let finished_by_first = PROCESSED.lock().unwrap().iter().filter(|n| (base..base + 20).contains(n)).count();
        assert!(finished_by_first >= 4, "the running workers finished before stop returned ({finished_by_first})");
        assert!(finished_by_first < 20, "the stopped instance did not take everything");
        cluster.start::<Slow>().await;
        for (n, reply) in replies {
            assert_eq!(reply.result().await.unwrap(), n);
        }
        let mut processed: Vec<u64> = PROCESSED.lock().unwrap().iter().copied().filter(|n| (base..base + 20).contains(n)).collect();
        processed.sort_unstable();
        assert_eq!(processed, (base..base + 20).collect::<Vec<_>>(), "every call ran exactly once");
        cluster.shutdown().await;
    }
}
