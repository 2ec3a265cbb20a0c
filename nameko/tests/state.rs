//! `State<T>`: a value given at startup, by type, handed to every worker of every service
//! started there (a runner, a container builder, a test cluster); a service missing its
//! value does not start, and says which.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use nameko::config::Config;
use nameko::container::ServiceContainer;
use nameko::memory::MemoryBroker;
use nameko::prelude::*;
use nameko::testing::TestCluster;

/// A counter every worker shares.
#[derive(Debug, Clone, Default)]
struct Hits(Arc<AtomicU64>);

#[derive(Debug, Clone)]
struct Greeting(&'static str);

#[derive(Dependencies)]
struct Counter {
    hits: State<Hits>,
}

#[service(name = "counter")]
impl Counter {
    #[rpc]
    async fn hit(&self) -> u64 {
        self.hits.0.fetch_add(1, Ordering::SeqCst) + 1
    }
}

#[derive(Dependencies)]
struct Greeter {
    hits: State<Hits>,
    greeting: State<Greeting>,
}

#[service(name = "greeter")]
impl Greeter {
    #[rpc]
    async fn greet(&self, name: String) -> String {
        self.hits.0.fetch_add(1, Ordering::SeqCst);
        format!("{} {name}", self.greeting.0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_gives_every_service_the_same_values() {
    let broker = MemoryBroker::new();
    let hits = Hits::default();
    let runner = ServiceRunner::new(Config::new(), Arc::new(broker.connect()))
        .with_state(hits.clone())
        .with_state(Greeting("hi"))
        .with_state(Greeting("hello"));
    runner.add::<Counter>().unwrap();
    runner.add::<Greeter>().unwrap();
    runner.start().await.unwrap();
    let proxy = ClusterRpcProxy::start(Arc::new(broker.connect()), &Config::new())
        .await
        .unwrap();
    let greeting: String = proxy
        .service("greeter")
        .call("greet", ("ada",))
        .await
        .unwrap();
    assert_eq!(greeting, "hello ada", "the last value of a type wins");
    let count: u64 = proxy.service("counter").call("hit", ()).await.unwrap();
    assert_eq!(count, 2, "both services share one counter");
    assert_eq!(hits.0.load(Ordering::SeqCst), 2, "the one given at startup");
    proxy.stop().await;
    assert!(runner.stop().await.is_clean());
}

#[tokio::test]
async fn a_container_without_its_value_does_not_start_and_names_the_type() {
    let broker = MemoryBroker::new();
    let container = ServiceContainer::<Greeter>::builder(Arc::new(broker.connect()), Config::new())
        .with_state(Hits::default())
        .build()
        .unwrap();
    let error = container.start().await.unwrap_err().to_string();
    assert!(
        error.contains("dependency `greeting`")
            && error.contains("no state of type `state::Greeting` was given at startup"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_cluster_gives_state_to_the_services_it_starts() {
    let mut cluster = TestCluster::memory()
        .with_state(Hits::default())
        .with_state(Greeting("hey"));
    cluster.start::<Greeter>().await;
    let proxy = cluster.proxy().await;
    let greeting: String = proxy
        .service("greeter")
        .call("greet", ("bo",))
        .await
        .unwrap();
    assert_eq!(greeting, "hey bo");
    cluster.shutdown().await;
}
