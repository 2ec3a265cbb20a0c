//! Events, on the in-memory broker and on RabbitMQ: dispatch, the three handler types
//! with nameko's queue names and flags, reliable and unreliable delivery, requeue on
//! error, call id stacks carried over events, and handlers of an event type from any
//! source.

use std::sync::Mutex;

use nameko::dependency::ValueProvider;
use nameko::prelude::*;
use nameko::testing::{TestCluster, cluster_tests};
use nameko::transport::{ExchangeKind, ExchangeOptions, QueueOptions, TransportError};

/// (service, instance, payload) of every event handled, in order.
static SEEN: Mutex<Vec<(&'static str, String, Value)>> = Mutex::new(Vec::new());

fn seen(run: &str) -> Vec<(&'static str, String, Value)> {
    SEEN.lock()
        .unwrap()
        .iter()
        .filter(|(_, _, p)| p["run"] == run)
        .cloned()
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
struct Source {
    events: EventDispatcher,
}

#[service(name = "src")]
impl Source {
    #[rpc]
    async fn emit(&self, event_type: String, payload: Value) -> Result<(), EventError> {
        self.events.dispatch(&event_type, payload).await
    }
}

macro_rules! handler_service {
    ($ty:ident, $name:literal, $($attr:tt)*) => {
        #[derive(Dependencies)]
        struct $ty {
            #[dependency(ValueProvider::new(String::from("default")))]
            instance: String,
            worker: std::sync::Arc<WorkerContext>,
        }

        #[service(name = $name)]
        impl $ty {
            #[event_handler($($attr)*)]
            async fn handle(&self, payload: Value) {
                let mut payload = payload;
                payload["stack"] = json!(self.worker.call_id_stack());
                SEEN.lock().unwrap().push(($name, self.instance.clone(), payload));
            }
        }
    };
}

handler_service!(PoolA, "pool_a", "src", "tick");
handler_service!(AnySource, "any_source", "*", "alarm.*");
handler_service!(PoolB, "pool_b", "src", "tick");
handler_service!(
    SingleA,
    "single_a",
    "src",
    "once_only",
    handler_type = singleton
);
handler_service!(
    SingleB,
    "single_b",
    "src",
    "once_only",
    handler_type = singleton
);
handler_service!(
    Everyone,
    "everyone",
    "src",
    "shout",
    handler_type = broadcast,
    reliable_delivery = false
);
handler_service!(Reliable, "reliable", "src", "kept");
handler_service!(
    Unreliable,
    "unreliable",
    "src",
    "dropped",
    reliable_delivery = false
);

#[derive(Dependencies)]
struct Flaky;

static FLAKY_CALLS: Mutex<Vec<Value>> = Mutex::new(Vec::new());

#[service(name = "flaky")]
impl Flaky {
    #[event_handler("src", "retry", requeue_on_error = true)]
    async fn handle(&self, payload: Value) -> Result<(), ServiceError> {
        let mut calls = FLAKY_CALLS.lock().unwrap();
        calls.push(payload.clone());
        let attempts = calls.iter().filter(|p| **p == payload).count();
        if attempts < 3 {
            Err(ServiceError::msg(format!("attempt {attempts} fails")))
        } else {
            Ok(())
        }
    }
}

async fn start_as<S: nameko::__private::Service>(cluster: &mut TestCluster, instance: &str) {
    let container = cluster.container::<S>().await;
    container
        .replace_dependency("instance", ValueProvider::new(instance.to_owned()))
        .unwrap();
    container.start().await.unwrap();
}

cluster_tests! {
    async fn service_pool_reaches_one_instance_of_every_service(cluster: TestCluster) {
        let mut cluster = cluster;
        start_as::<PoolA>(&mut cluster, "a1").await;
        start_as::<PoolA>(&mut cluster, "a2").await;
        start_as::<PoolB>(&mut cluster, "b1").await;
        let run = run_id();
        for i in 0..10 {
            cluster.dispatch("src", "tick", json!({"run": run, "i": i})).await;
        }
        cluster.run_until_idle().await.unwrap();
        let seen = seen(&run);
        for i in 0..10 {
            let by: Vec<_> = seen.iter().filter(|(_, _, p)| p["i"] == i).map(|(s, inst, _)| (*s, inst.as_str())).collect();
            assert_eq!(by.iter().filter(|(s, _)| *s == "pool_a").count(), 1, "event {i} reached one pool_a instance: {by:?}");
            assert_eq!(by.iter().filter(|(s, _)| *s == "pool_b").count(), 1, "event {i} reached pool_b: {by:?}");
        }
        let a1 = seen.iter().filter(|(_, inst, _)| inst == "a1").count();
        let a2 = seen.iter().filter(|(_, inst, _)| inst == "a2").count();
        assert!(a1 > 0 && a2 > 0, "both pool_a instances took a share ({a1}/{a2})");
        let t = cluster.connect().await;
        t.declare_queue("evt-src-tick--pool_a.handle", QueueOptions::durable()).await.expect("service pool queue: durable, not auto-delete");
        cluster.shutdown().await;
    }

    async fn singleton_reaches_one_handler_in_the_cluster(cluster: TestCluster) {
        let mut cluster = cluster;
        start_as::<SingleA>(&mut cluster, "s").await;
        start_as::<SingleB>(&mut cluster, "s").await;
        let run = run_id();
        for i in 0..10 {
            cluster.dispatch("src", "once_only", json!({"run": run, "i": i})).await;
        }
        cluster.run_until_idle().await.unwrap();
        let seen = seen(&run);
        assert_eq!(seen.len(), 10, "each event handled exactly once in the whole cluster");
        let a = seen.iter().filter(|(s, _, _)| *s == "single_a").count();
        assert!(a > 0 && a < 10, "both services compete for the singleton queue ({a}/10)");
        let t = cluster.connect().await;
        t.declare_queue("evt-src-once_only", QueueOptions::durable()).await.expect("singleton queue is shared by name");
        cluster.shutdown().await;
    }

    async fn broadcast_reaches_every_instance(cluster: TestCluster) {
        let mut cluster = cluster;
        start_as::<Everyone>(&mut cluster, "e1").await;
        start_as::<Everyone>(&mut cluster, "e2").await;
        let run = run_id();
        for i in 0..5 {
            cluster.dispatch("src", "shout", json!({"run": run, "i": i})).await;
        }
        cluster.run_until_idle().await.unwrap();
        let seen = seen(&run);
        assert_eq!(seen.iter().filter(|(_, inst, _)| inst == "e1").count(), 5);
        assert_eq!(seen.iter().filter(|(_, inst, _)| inst == "e2").count(), 5);
        if let Some(broker) = cluster.broker() {
            let queues: Vec<_> = broker.queues().into_iter().filter(|q| q.name.starts_with("evt-src-shout--everyone.handle-")).collect();
            assert_eq!(queues.len(), 2, "one queue per instance");
            for q in queues {
                let suffix = q.name.rsplit('-').next().unwrap();
                assert_eq!(suffix.len(), 32, "uuid4 hex identifier: {}", q.name);
                assert!(q.exclusive && q.auto_delete && !q.durable, "{q:?}");
            }
        }
        cluster.shutdown().await;
    }

    async fn reliable_delivery_keeps_events_while_the_service_is_down(cluster: TestCluster) {
        let mut cluster = cluster;
        let run = run_id();
        let reliable = cluster.container::<Reliable>().await;
        reliable.start().await.unwrap();
        let unreliable = cluster.container::<Unreliable>().await;
        unreliable.start().await.unwrap();
        reliable.stop().await.unwrap();
        unreliable.stop().await.unwrap();
        cluster.dispatch("src", "kept", json!({"run": run, "i": 1})).await;
        cluster.dispatch("src", "dropped", json!({"run": run, "i": 2})).await;
        let t = cluster.connect().await;
        let kept = t.declare_queue("evt-src-kept--reliable.handle", QueueOptions::passive()).await.unwrap();
        assert_eq!(kept.message_count, 1, "the reliable queue outlives the service");
        assert!(matches!(
            t.declare_queue("evt-src-dropped--unreliable.handle", QueueOptions::passive()).await,
            Err(TransportError::NotFound(_))
        ), "the unreliable queue went with its consumer");
        start_as::<Reliable>(&mut cluster, "again").await;
        start_as::<Unreliable>(&mut cluster, "again").await;
        cluster.run_until_idle().await.unwrap();
        let seen = seen(&run);
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].0, "reliable");
        cluster.shutdown().await;
    }

    async fn requeue_on_error_redelivers_until_the_handler_succeeds(cluster: TestCluster) {
        let mut cluster = cluster.with_config("REQUEUE_DELAY", 0.05);
        cluster.start::<Flaky>().await;
        let run = run_id();
        cluster.dispatch("src", "retry", json!({"run": run})).await;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let attempts = FLAKY_CALLS.lock().unwrap().iter().filter(|p| p["run"] == run).count();
            if attempts >= 3 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "only {attempts} attempts");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        cluster.run_until_idle().await.unwrap();
        assert_eq!(FLAKY_CALLS.lock().unwrap().iter().filter(|p| p["run"] == run).count(), 3, "acked once it succeeded");
        cluster.shutdown().await;
    }

    async fn call_id_stack_continues_over_events(cluster: TestCluster) {
        let mut cluster = cluster.predictable_call_ids();
        start_as::<PoolB>(&mut cluster, "b").await;
        cluster.start::<Source>().await;
        let proxy = cluster.proxy().await;
        let run = run_id();
        proxy.service("src").call::<Value>("emit", ("tick", json!({"run": run}))).await.unwrap();
        cluster.run_until_idle().await.unwrap();
        let seen = seen(&run);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].2["stack"], json!([proxy.root_call_id(), "src.emit.0", "pool_b.handle.1"]));
        cluster.shutdown().await;
    }

    async fn a_handler_of_any_source_gets_the_event_type_from_every_service(cluster: TestCluster) {
        let mut cluster = cluster;
        start_as::<AnySource>(&mut cluster, "any").await;
        let run = run_id();
        cluster.dispatch("billing", "alarm.fire", json!({"run": run, "from": "billing"})).await;
        cluster.dispatch("shipping", "alarm.flood", json!({"run": run, "from": "shipping"})).await;
        cluster.dispatch("billing", "tick", json!({"run": run, "from": "not an alarm"})).await;
        cluster.run_until_idle().await.unwrap();
        let mut from: Vec<Value> = seen(&run).into_iter().map(|(_, _, p)| p["from"].clone()).collect();
        from.sort_by_key(ToString::to_string);
        assert_eq!(from, [json!("billing"), json!("shipping")]);
        if let Some(broker) = cluster.broker() {
            assert!(broker.queue("evt-*-alarm.*--any_source.handle").is_some());
        }
        cluster.shutdown().await;
    }

    async fn event_exchanges_are_declared_as_nameko_declares_them(cluster: TestCluster) {
        let mut cluster = cluster;
        cluster.start::<Source>().await;
        let t = cluster.connect().await;
        t.declare_exchange("src.events", ExchangeKind::Topic, ExchangeOptions::durable()).await.expect("topic, durable, not auto-delete");
        let t = cluster.connect().await;
        assert!(matches!(
            t.declare_exchange("src.events", ExchangeKind::Topic, ExchangeOptions::durable().with_auto_delete(true)).await,
            Err(TransportError::PreconditionFailed(_))
        ));
        cluster.shutdown().await;
    }
}

#[tokio::test]
async fn broadcast_with_reliable_delivery_needs_an_identifier() {
    #[derive(Dependencies)]
    struct Bad;
    #[service(name = "bad")]
    impl Bad {
        #[event_handler("src", "x", handler_type = broadcast)]
        async fn handle(&self, _payload: Value) {}
    }
    let broker = nameko::memory::MemoryBroker::new();
    let err = ServiceContainer::<Bad>::new(std::sync::Arc::new(broker.connect()), Config::new())
        .unwrap_err();
    assert!(
        err.to_string().contains("EventHandlerConfigurationError"),
        "{err}"
    );

    #[derive(Dependencies)]
    struct Good;
    #[service(name = "good")]
    impl Good {
        #[event_handler("src", "x", handler_type = broadcast, broadcast_identifier = "host-1")]
        async fn handle(&self, _payload: Value) {}
    }
    let container =
        ServiceContainer::<Good>::new(std::sync::Arc::new(broker.connect()), Config::new())
            .unwrap();
    container.start().await.unwrap();
    let queue = broker
        .queue("evt-src-x--good.handle-host-1")
        .expect("custom identifier names the queue");
    assert!(
        queue.durable && !queue.exclusive && !queue.auto_delete,
        "reliable broadcast queue: {queue:?}"
    );
    container.stop().await.unwrap();
}
