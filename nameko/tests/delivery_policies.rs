//! Queue arguments and per-message options, on the in-memory broker and on RabbitMQ:
//! with a max-priority handler queue and a busy consumer, events dispatched with a
//! higher priority overtake those waiting; an event whose expiration runs out while the
//! consumer is busy is dropped.

use std::sync::Mutex;
use std::time::Duration;

use nameko::messaging::MessageOptions;
use nameko::prelude::*;
use nameko::testing::{TestCluster, cluster_tests};

/// (run, label) of every event handled, in order.
static HANDLED: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

fn handled(run: &str) -> Vec<String> {
    HANDLED
        .lock()
        .unwrap()
        .iter()
        .filter(|(r, _)| r == run)
        .map(|(_, label)| label.clone())
        .collect()
}

fn run_id() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

#[derive(Dependencies)]
struct Prioritised;

#[service(name = "prioritised")]
impl Prioritised {
    #[event_handler("prio_src", "job", max_priority = 10)]
    async fn handle(&self, job: Value) {
        if job["busy_ms"].is_u64() {
            let ms = job["busy_ms"].as_u64().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let run = job["run"].as_str().unwrap_or_default().to_owned();
        let label = job["label"].as_str().unwrap_or_default().to_owned();
        HANDLED.lock().unwrap().push((run, label));
    }
}

async fn wait_for(run: &str, count: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while handled(run).len() < count && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    handled(run)
}

cluster_tests! {
    async fn higher_priority_events_overtake_waiting_ones(cluster: TestCluster) {
        let mut cluster = cluster
            .with_config("MAX_WORKERS", 1)
            .with_config("PREFETCH_COUNT", 1);
        cluster.start::<Prioritised>().await;
        let run = run_id();
        let events = cluster.dispatcher().await.as_service("prio_src");
        events
            .dispatch("job", json!({"run": run, "label": "busy", "busy_ms": 500}))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        for (label, priority) in [("low-1", 0), ("low-2", 1), ("high", 9), ("low-3", 0)] {
            events
                .dispatch_with(
                    "job",
                    json!({"run": run, "label": label}),
                    MessageOptions::new().priority(priority),
                )
                .await
                .unwrap();
        }
        assert_eq!(
            wait_for(&run, 5).await,
            ["busy", "high", "low-2", "low-1", "low-3"],
            "the busy consumer took the waiting events by priority"
        );
        cluster.shutdown().await;
    }

    async fn expired_events_are_dropped_while_the_consumer_is_busy(cluster: TestCluster) {
        let mut cluster = cluster
            .with_config("MAX_WORKERS", 1)
            .with_config("PREFETCH_COUNT", 1);
        cluster.start::<Prioritised>().await;
        let run = run_id();
        let events = cluster.dispatcher().await.as_service("prio_src");
        events
            .dispatch("job", json!({"run": run, "label": "busy", "busy_ms": 600}))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        events
            .dispatch_with(
                "job",
                json!({"run": run, "label": "stale"}),
                MessageOptions::new().expiration(Duration::from_millis(100)),
            )
            .await
            .unwrap();
        events
            .dispatch_with(
                "job",
                json!({"run": run, "label": "fresh"}),
                MessageOptions::new().expiration(Duration::from_secs(60)),
            )
            .await
            .unwrap();
        assert_eq!(wait_for(&run, 2).await, ["busy", "fresh"]);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(handled(&run), ["busy", "fresh"], "the expired event was dropped");
        cluster.shutdown().await;
    }
}
