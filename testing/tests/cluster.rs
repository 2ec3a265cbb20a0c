//! Test clusters: run until idle, predictable call ids, and cleanup when a test panics.

use std::time::Duration;

use nameko::container::ContainerState;
use nameko::prelude::*;
use nameko_testing::TestCluster;

#[derive(Dependencies)]
struct Relay {
    events: EventDispatcher,
    worker: std::sync::Arc<WorkerContext>,
}

#[service(name = "relay")]
impl Relay {
    #[rpc]
    async fn start(&self, hops: u32) -> Result<String, EventError> {
        self.events.dispatch("hop", json!({"left": hops})).await?;
        Ok(self.worker.call_id().to_owned())
    }

    #[event_handler("relay", "hop")]
    async fn hop(&self, payload: Value) -> Result<(), EventError> {
        let left = payload["left"].as_u64().unwrap_or(0);
        if left > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            self.events
                .dispatch("hop", json!({"left": left - 1}))
                .await?;
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_until_idle_waits_for_a_chain_of_events() {
    let mut cluster = TestCluster::memory().predictable_call_ids();
    let container = cluster.start::<Relay>().await;
    let events = container.subscribe_workers();
    let proxy = cluster.proxy().await;
    let call_id: String = proxy.service("relay").call("start", (20,)).await.unwrap();
    assert_eq!(call_id, "relay.start.0", "predictable call ids");
    cluster.run_until_idle().await.unwrap();
    // The start call and 21 hops have all finished by now.
    let mut events = events;
    let mut finished = 0;
    while events.try_recv().is_ok() {
        finished += 1;
    }
    assert_eq!(finished, 22);
    assert_eq!(container.running_workers(), 0);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_test_still_stops_its_containers() {
    let mut cluster = TestCluster::memory();
    let container = cluster.start::<Relay>().await;
    let outcome = tokio::spawn(async move {
        let _cluster = cluster;
        panic!("the test failed");
    })
    .await;
    assert!(outcome.is_err());
    let mut state = container.watch_state();
    tokio::time::timeout(
        Duration::from_secs(5),
        state.wait_for(ContainerState::is_finished),
    )
    .await
    .expect("the container stopped when the cluster was dropped")
    .unwrap();
}

#[tokio::test]
async fn from_env_runs_on_memory_unless_asked_for_rabbitmq() {
    if std::env::var(nameko_testing::TRANSPORT_VAR).is_err() {
        let cluster = TestCluster::from_env().await.unwrap();
        assert!(cluster.is_memory());
    }
}
