//! The transport chosen by `AMQP_URI`: the process-wide in-memory broker and named ones,
//! RabbitMQ with the config's options, unknown schemes and unreachable brokers (without
//! the password in any error), and one example cluster run unchanged on both brokers.

use std::sync::Arc;
use std::time::Duration;

use nameko::config::Config;
use nameko::connect::{ConnectError, Connector};
use nameko::prelude::*;
use nameko::testing::TestCluster;
use tokio::time::Instant;

#[derive(Dependencies)]
struct ServiceX {
    #[dependency(service = "service_y")]
    y: RpcProxy,
    events: EventDispatcher,
}

#[service(name = "service_x")]
impl ServiceX {
    #[rpc]
    async fn remote_method(&self, value: String) -> Result<String, RpcError> {
        let res: String = self.y.call("append_identifier", (value,)).await?;
        Ok(format!("{res}-x"))
    }

    #[rpc]
    async fn announce(&self, value: String) -> Result<(), EventError> {
        self.events
            .dispatch("announced", json!({ "value": value }))
            .await
    }
}

#[derive(Dependencies)]
struct ServiceY {
    worker: Arc<WorkerContext>,
}

static ANNOUNCED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

#[service(name = "service_y")]
impl ServiceY {
    #[rpc]
    async fn append_identifier(&self, value: String) -> String {
        format!("{value}-y")
    }

    #[rpc]
    async fn language(&self) -> Option<String> {
        self.worker.context().language().map(str::to_owned)
    }

    #[event_handler("service_x", "announced")]
    async fn on_announced(&self, payload: Value) {
        let value = payload["value"].as_str().unwrap_or_default().to_owned();
        ANNOUNCED.lock().unwrap().push(value);
    }
}

/// The example cluster, driven only by `config`: the same code on any broker.
async fn run_example_cluster(config: Config, tag: &str) -> Vec<Value> {
    let connector = Connector::from_config(&config).unwrap();
    let runner = ServiceRunner::with_connector(config.clone(), move |service| {
        let connector = connector.clone();
        async move { connector.connect_as(service).await }
    });
    runner.add::<ServiceX>().unwrap().add::<ServiceY>().unwrap();
    runner.start().await.unwrap();

    let transport = nameko::connect(&config).await.unwrap();
    let context = ContextData::new().with("language", "fr");
    let proxy = ClusterRpcProxy::start_with_context(transport.clone(), &config, context)
        .await
        .unwrap();
    let mut results = Vec::new();
    let x = proxy.service("service_x");
    results.push(x.call::<Value>("remote_method", (tag,)).await.unwrap());
    results.push(
        proxy
            .service("service_y")
            .call::<Value>("language", ())
            .await
            .unwrap(),
    );
    x.call::<Value>("announce", (tag,)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ANNOUNCED.lock().unwrap().iter().any(|v| v == tag) {
        assert!(Instant::now() < deadline, "the event never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    results.push(json!(format!("event {tag}")));
    let missing = proxy
        .service("service_z")
        .call::<Value>("anything", ())
        .await;
    results.push(json!(matches!(missing, Err(RpcError::UnknownService(_)))));
    proxy.stop().await;
    transport.close().await.unwrap();
    let report = runner.stop().await;
    assert!(report.is_clean(), "{report}");
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_cluster_runs_on_memory_and_on_rabbitmq_without_a_code_change() {
    let expected = |tag: &str| {
        vec![
            json!(format!("{tag}-y-x")),
            json!("fr"),
            json!(format!("event {tag}")),
            json!(true),
        ]
    };
    let memory = Config::new().with("AMQP_URI", "memory://example-cluster");
    assert_eq!(run_example_cluster(memory, "mem").await, expected("mem"));
    assert_eq!(
        nameko::connect::memory_broker("example-cluster")
            .connections()
            .len(),
        0,
        "every connection was closed"
    );

    let Some(cluster) = TestCluster::rabbitmq().await else {
        return;
    };
    let rabbit = Config::new().with("AMQP_URI", cluster.amqp_uri().unwrap());
    assert_eq!(run_example_cluster(rabbit, "amqp").await, expected("amqp"));
}

#[tokio::test]
async fn every_memory_uri_of_a_name_shares_one_broker() {
    let config = Config::new().with("AMQP_URI", "memory://shared-by-name");
    let container =
        ServiceContainer::<ServiceY>::new(nameko::connect(&config).await.unwrap(), config.clone())
            .unwrap();
    container.start().await.unwrap();
    let proxy = ClusterRpcProxy::start(nameko::connect(&config).await.unwrap(), &config)
        .await
        .unwrap();
    let out: String = proxy
        .service("service_y")
        .call("append_identifier", ("m",))
        .await
        .unwrap();
    assert_eq!(out, "m-y");

    let other = Config::new().with("AMQP_URI", "memory://another-name");
    let elsewhere = ClusterRpcProxy::start(nameko::connect(&other).await.unwrap(), &other)
        .await
        .unwrap();
    let missing = elsewhere
        .service("service_y")
        .call::<Value>("append_identifier", ("m",))
        .await;
    assert!(
        matches!(missing, Err(RpcError::UnknownService(_))),
        "{missing:?}"
    );
    elsewhere.stop().await;
    proxy.stop().await;
    container.stop().await.unwrap();
}

#[tokio::test]
async fn without_amqp_uri_examples_get_the_process_broker() {
    let transport = nameko::connect_or_memory(&Config::new()).await.unwrap();
    assert_eq!(transport.endpoint(), "memory://");
    let plain = Config::new().with("AMQP_URI", "memory://");
    let same = nameko::connect(&plain).await.unwrap();
    assert_eq!(same.endpoint(), "memory://");
    assert!(nameko::connect::memory_broker("").connections().len() >= 2);
    let rabbit = Connector::from_config(&Config::new()).unwrap();
    assert_eq!(
        rabbit.broker().to_string(),
        "amqp://guest:***@localhost:5672/%2f"
    );
}

#[tokio::test]
async fn an_unknown_scheme_is_refused_without_the_password() {
    let config = Config::new().with("AMQP_URI", "kafka://app:hunter2@kafka:9092/");
    let error = nameko::connect(&config).await.unwrap_err();
    assert!(matches!(&error, ConnectError::UnsupportedScheme { scheme, .. } if scheme == "kafka"));
    let text = error.to_string();
    assert_eq!(
        text,
        "unsupported broker URI `kafka://app:***@kafka:9092/`: the scheme must be amqp://, \
         amqps://, pyamqp:// or memory://"
    );
    assert!(error.is_config_error());
    let wrong_type = nameko::connect(&Config::new().with("AMQP_URI", 5))
        .await
        .unwrap_err();
    assert!(wrong_type.to_string().contains("AMQP_URI"), "{wrong_type}");
}

#[tokio::test]
async fn an_unreachable_broker_is_reported_without_the_password() {
    let config = Config::new()
        .with("AMQP_URI", "amqp://app:hunter2@127.0.0.1:1/prod")
        .with("AMQP_STARTUP", "fail_fast");
    let started = Instant::now();
    let error = nameko::connect(&config).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "fail_fast fails at once"
    );
    assert!(matches!(error, ConnectError::Transport { .. }), "{error:?}");
    assert!(!error.is_config_error());
    let text = format!("{error} / {error:?}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(text.contains("amqp://app:***@127.0.0.1:1/prod"), "{text}");
}

#[tokio::test]
async fn waiting_for_the_broker_is_bounded_by_the_startup_timeout() {
    let config = Config::new()
        .with("AMQP_URI", "amqp://app:hunter2@127.0.0.1:1/")
        .with("AMQP_STARTUP", "wait")
        .with("AMQP_STARTUP_TIMEOUT", 0.5);
    let started = Instant::now();
    let error = nameko::connect(&config).await.unwrap_err();
    let waited = started.elapsed();
    assert!(
        matches!(error, ConnectError::StartupTimeout { .. }),
        "{error:?}"
    );
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

/// `rabbitmqctl list_connections` rows (heartbeat, client properties) for a vhost, when
/// `rabbitmqctl` can be run here.
fn connections_of(vhost: &str) -> Option<Vec<(String, String)>> {
    let text = nameko::testing::rabbitmqctl(
        &[
            "list_connections",
            "-p",
            vhost,
            "timeout",
            "client_properties",
            "--quiet",
            "--no-table-headers",
        ],
        Duration::from_secs(60),
    )
    .ok()?;
    Some(
        text.lines()
            .filter_map(|line| {
                let (timeout, properties) = line.split_once('\t')?;
                Some((timeout.trim().to_owned(), properties.to_owned()))
            })
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_connections_follow_the_config() {
    let Some(cluster) = TestCluster::rabbitmq().await else {
        return;
    };
    let uri = cluster.amqp_uri().unwrap();
    let vhost = uri.rsplit('/').next().unwrap().to_owned();
    let pyamqp = format!("py{uri}");
    let config = Config::new().with("AMQP_URI", pyamqp).with("HEARTBEAT", 17);
    let connector = Connector::from_config(&config).unwrap();
    assert!(!connector.broker().to_string().contains(":guest@"));
    let transport = connector.connect_as("orders-service").await.unwrap();
    let Some(connections) = connections_of(&vhost) else {
        eprintln!("skipping the connection checks: rabbitmqctl is not available");
        return;
    };
    let named = connections
        .iter()
        .find(|(_, properties)| properties.contains(r#"{"connection_name","orders-service"}"#))
        .unwrap_or_else(|| panic!("no connection named orders-service: {connections:?}"));
    assert_eq!(named.0, "17", "the HEARTBEAT of the config");
    transport.close().await.unwrap();
}

#[test]
fn several_brokers_are_read_from_amqp_uri_in_either_form() {
    let listed = Config::new().with("AMQP_URI", "amqp://app:s3cret@r1:5681,r2:5682,r3:5683/prod");
    let connector = Connector::from_config(&listed).expect("a host list");
    assert_eq!(
        connector.broker().to_string(),
        "amqp://app:***@r1:5681,r2:5682,r3:5683/prod"
    );
    // kombu's form, as Python nameko writes it, with AMQP_SSL turning each URI to amqps.
    let kombu = Config::new()
        .with("AMQP_URI", "amqp://app:s3cret@r1//;amqp://app:s3cret@r2//")
        .with("AMQP_SSL", true);
    let connector = Connector::from_config(&kombu).expect("a failover list");
    assert_eq!(
        connector.broker().to_string(),
        "amqps://app:***@r1:5671,r2:5671/%2f"
    );
    assert!(!format!("{connector:?}").contains("s3cret"));
}
