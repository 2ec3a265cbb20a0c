//! The service runner: several services in one process, started together (rolled back
//! when one fails), stopped gracefully within the shutdown deadline, killed, a crash
//! reported by name; serving until signalled; and a service binary built with the
//! one-line `main` stopped by SIGTERM while calls are in flight, against RabbitMQ.

mod process_support;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use nameko::cli::exit;
use nameko::config::Config;
use nameko::container::{ContainerContext, ContainerState};
use nameko::dependency::{DependencyProvider, ProviderError};
use nameko::memory::MemoryBroker;
use nameko::prelude::*;
use nameko::runner::{RunnerError, StopOutcome, run_services};
use nameko::serve::{Served, Signal, serve_with};
use nameko::testing::TestCluster;
use nameko::transport::Transport;
use tokio::time::Instant;

use process_support::{ServiceProcess, example_binary};

#[derive(Dependencies)]
struct ServiceX {
    #[dependency(service = "service_y")]
    y: RpcProxy,
}

#[service(name = "service_x")]
impl ServiceX {
    #[rpc]
    async fn remote_method(&self, value: String) -> Result<String, RpcError> {
        let res: String = self.y.call("append_identifier", (value,)).await?;
        Ok(format!("{res}-x"))
    }
}

#[derive(Dependencies)]
struct ServiceY;

#[service(name = "service_y")]
impl ServiceY {
    #[rpc]
    async fn append_identifier(&self, value: String) -> String {
        format!("{value}-y")
    }

    #[rpc]
    async fn sleep(&self, millis: u64) -> u64 {
        tokio::time::sleep(Duration::from_millis(millis)).await;
        millis
    }
}

/// A dependency whose setup fails, as a database that cannot be reached.
struct Unreachable;

impl DependencyProvider for Unreachable {
    type Output = ();

    async fn setup(&mut self, _container: &ContainerContext) -> Result<(), ProviderError> {
        Err(ProviderError::new("database unreachable"))
    }

    async fn get_dependency(&self, _worker: &WorkerContext) -> Result<(), ProviderError> {
        Ok(())
    }
}

#[derive(Dependencies)]
struct Broken {
    #[dependency(Unreachable)]
    _db: (),
}

#[service(name = "broken")]
impl Broken {
    #[rpc]
    async fn ping(&self) {}
}

/// Hands workers the container's context, so that a call can crash the container.
struct ContextProvider(Option<ContainerContext>);

impl DependencyProvider for ContextProvider {
    type Output = ContainerContext;

    async fn setup(&mut self, container: &ContainerContext) -> Result<(), ProviderError> {
        self.0 = Some(container.clone());
        Ok(())
    }

    async fn get_dependency(
        &self,
        _worker: &WorkerContext,
    ) -> Result<ContainerContext, ProviderError> {
        self.0
            .clone()
            .ok_or_else(|| ProviderError::new("not set up"))
    }
}

#[derive(Dependencies)]
struct Crashy {
    #[dependency(ContextProvider(None))]
    container: ContainerContext,
}

#[service(name = "crashy")]
impl Crashy {
    #[rpc]
    async fn crash(&self) {
        self.container.crash("the consumer died for good");
    }
}

/// A runner on `broker` whose services each get a connection of their own.
fn runner_on(broker: &MemoryBroker, config: Config) -> ServiceRunner {
    let broker = broker.clone();
    ServiceRunner::with_connector(config, move |_service| {
        let transport: Arc<dyn Transport> = Arc::new(broker.connect());
        async move { Ok::<_, Infallible>(transport) }
    })
}

async fn proxy_on(broker: &MemoryBroker) -> ClusterRpcProxy {
    ClusterRpcProxy::start(Arc::new(broker.connect()), &Config::new())
        .await
        .unwrap()
}

#[tokio::test]
async fn services_start_and_stop_together_each_on_its_own_connection() {
    let broker = MemoryBroker::new();
    let runner = runner_on(&broker, Config::new());
    runner.add::<ServiceX>().unwrap().add::<ServiceY>().unwrap();
    assert_eq!(runner.service_names(), ["service_x", "service_y"]);
    assert!(
        runner.containers().is_empty(),
        "containers are built at start"
    );
    runner.start().await.unwrap();
    assert_eq!(
        runner.states(),
        [
            ("service_x", ContainerState::Running),
            ("service_y", ContainerState::Running)
        ]
    );
    assert_eq!(broker.connections().len(), 2, "one connection per service");
    assert_eq!(
        runner.container("service_y").unwrap().service_name(),
        "service_y"
    );

    let proxy = proxy_on(&broker).await;
    let out: String = proxy
        .service("service_x")
        .call("remote_method", ("a",))
        .await
        .unwrap();
    assert_eq!(out, "a-y-x");

    let report = runner.stop().await;
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.to_string(), "service_x: stopped, service_y: stopped");
    assert!(
        runner
            .states()
            .iter()
            .all(|(_, s)| *s == ContainerState::Stopped)
    );
    assert_eq!(
        broker.connections().len(),
        1,
        "the services' connections are closed; the proxy's is left"
    );
    runner.wait().await.unwrap();
    assert!(matches!(
        runner.start().await,
        Err(RunnerError::AlreadyStarted)
    ));
    proxy.stop().await;
}

#[tokio::test]
async fn one_connection_can_be_shared_and_is_left_open() {
    let broker = MemoryBroker::new();
    let transport: Arc<dyn Transport> = Arc::new(broker.connect());
    let runner = ServiceRunner::new(Config::new(), transport.clone());
    runner.add::<ServiceX>().unwrap().add::<ServiceY>().unwrap();
    runner.start().await.unwrap();
    assert_eq!(broker.connections().len(), 1);
    let proxy = proxy_on(&broker).await;
    let out: String = proxy
        .service("service_x")
        .call("remote_method", ("b",))
        .await
        .unwrap();
    assert_eq!(out, "b-y-x");
    assert!(runner.stop().await.is_clean());
    assert_eq!(
        broker.connections().len(),
        2,
        "the shared connection stays open"
    );
    proxy.stop().await;
}

#[tokio::test]
async fn a_service_that_fails_to_start_stops_the_others() {
    let broker = MemoryBroker::new();
    let runner = runner_on(&broker, Config::new());
    runner.add::<ServiceY>().unwrap().add::<Broken>().unwrap();
    let error = runner.start().await.unwrap_err();
    assert_eq!(error.service(), Some("broken"));
    let text = error.to_string();
    assert!(
        text.contains("service `broken` did not start") && text.contains("database unreachable"),
        "{text}"
    );
    let states = runner.states();
    assert_eq!(
        states[0],
        ("service_y", ContainerState::Stopped),
        "{states:?}"
    );
    assert!(
        matches!(states[1].1, ContainerState::Crashed(_)),
        "{states:?}"
    );
    assert!(
        broker.connections().is_empty(),
        "every connection the runner opened is closed"
    );
}

#[tokio::test]
async fn a_connection_failure_names_the_service() {
    let broker = MemoryBroker::new();
    let runner = ServiceRunner::with_connector(Config::new(), move |service| {
        let result: Result<Arc<dyn Transport>, String> = if service == "service_x" {
            Err("broker refused the login".to_owned())
        } else {
            Ok(Arc::new(broker.connect()))
        };
        async move { result }
    });
    runner.add::<ServiceX>().unwrap().add::<ServiceY>().unwrap();
    let error = runner.start().await.unwrap_err();
    assert!(
        matches!(
            error,
            RunnerError::Connect {
                service: "service_x",
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "service `service_x`: broker refused the login"
    );
    assert_eq!(runner.states(), [("service_y", ContainerState::Stopped)]);
}

#[tokio::test]
async fn services_are_added_once_and_before_start() {
    let runner = ServiceRunner::new(Config::new(), Arc::new(MemoryBroker::new().connect()));
    assert!(matches!(runner.start().await, Err(RunnerError::NoServices)));
    let runner = ServiceRunner::new(Config::new(), Arc::new(MemoryBroker::new().connect()));
    runner.add::<ServiceY>().unwrap();
    assert!(matches!(
        runner.add::<ServiceY>(),
        Err(RunnerError::DuplicateService("service_y"))
    ));
    runner.start().await.unwrap();
    assert!(matches!(
        runner.add::<ServiceX>(),
        Err(RunnerError::AlreadyStarted)
    ));
    runner.kill().await;
    assert_eq!(runner.states(), [("service_y", ContainerState::Killed)]);
}

#[tokio::test]
async fn wait_reports_the_crashed_service_and_stops_the_others() {
    let broker = MemoryBroker::new();
    let runner = runner_on(&broker, Config::new());
    runner.add::<ServiceY>().unwrap().add::<Crashy>().unwrap();
    runner.start().await.unwrap();
    let waiting = tokio::spawn({
        let runner = runner.clone();
        async move { runner.wait().await }
    });
    let proxy = proxy_on(&broker).await;
    let _ = proxy
        .service("crashy")
        .with_timeout(Duration::from_millis(500))
        .call::<Value>("crash", ())
        .await;
    let error = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("wait returns once a service crashed")
        .unwrap()
        .unwrap_err();
    match &error {
        RunnerError::Crashed { service, reason } => {
            assert_eq!(*service, "crashy");
            assert_eq!(reason, "the consumer died for good");
        }
        other => panic!("expected a crash, got {other:?}"),
    }
    let states = runner.states();
    assert_eq!(
        states[0],
        ("service_y", ContainerState::Stopped),
        "the others are stopped"
    );
    assert_eq!(
        states[1].1,
        ContainerState::Crashed("the consumer died for good".to_owned())
    );
    let report = runner.stop().await;
    assert_eq!(
        report.crashed().collect::<Vec<_>>(),
        [("crashy", "the consumer died for good")]
    );
    proxy.stop().await;
}

#[tokio::test]
async fn the_shutdown_deadline_kills_workers_still_running() {
    let broker = MemoryBroker::new();
    let runner = runner_on(&broker, Config::new().with("SHUTDOWN_TIMEOUT", 0.3));
    runner.add::<ServiceY>().unwrap();
    runner.start().await.unwrap();
    let proxy = proxy_on(&broker).await;
    let slow = proxy
        .service("service_y")
        .call_async::<u64>("sleep", (30_000,))
        .await
        .unwrap();
    let quick = proxy
        .service("service_y")
        .call_async::<u64>("sleep", (50,))
        .await
        .unwrap();
    let container = runner.container("service_y").unwrap();
    while container.running_workers() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    let report = runner.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "stopped at the deadline, not after 30 s"
    );
    assert_eq!(
        report.services[0].outcome,
        StopOutcome::Forced {
            abandoned_workers: 1
        }
    );
    assert!(report.was_forced() && !report.is_clean());
    assert_eq!(
        quick.result().await.unwrap(),
        50,
        "the short call finished within the deadline"
    );
    drop(slow);
    proxy.stop().await;
}

#[tokio::test]
async fn run_services_stops_the_services_after_the_body() {
    let broker = MemoryBroker::new();
    let runner = runner_on(&broker, Config::new());
    runner.add::<ServiceX>().unwrap().add::<ServiceY>().unwrap();
    let out = run_services(&runner, false, async {
        let proxy = proxy_on(&broker).await;
        let out: String = proxy
            .service("service_x")
            .call("remote_method", ("c",))
            .await
            .unwrap();
        proxy.stop().await;
        out
    })
    .await
    .unwrap();
    assert_eq!(out, "c-y-x");
    assert!(
        runner
            .states()
            .iter()
            .all(|(_, s)| *s == ContainerState::Stopped)
    );

    let runner = runner_on(&broker, Config::new());
    runner.add::<ServiceY>().unwrap();
    run_services(&runner, true, async {}).await.unwrap();
    assert_eq!(runner.states(), [("service_y", ContainerState::Killed)]);
}

#[tokio::test]
async fn run_until_serves_until_the_shutdown_future_completes() {
    let broker = MemoryBroker::new();
    let runner = runner_on(&broker, Config::new());
    runner.add::<ServiceY>().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn({
        let runner = runner.clone();
        async move {
            runner
                .run_until(async {
                    stopped.await.ok();
                })
                .await
        }
    });
    let container = loop {
        match runner.container("service_y") {
            Some(c) if c.state() == ContainerState::Running => break c,
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    };
    let proxy = proxy_on(&broker).await;
    let reply = proxy
        .service("service_y")
        .call_async::<u64>("sleep", (200,))
        .await
        .unwrap();
    while container.running_workers() < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.send(()).unwrap();
    assert_eq!(
        reply.result().await.unwrap(),
        200,
        "the call in flight is answered"
    );
    let report = serving.await.unwrap().unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(container.state(), ContainerState::Stopped);
    proxy.stop().await;
}

#[tokio::test]
async fn a_first_signal_stops_gracefully_and_a_second_kills() {
    let broker = MemoryBroker::new();
    let runner = runner_on(&broker, Config::new());
    runner.add::<ServiceY>().unwrap();
    runner.start().await.unwrap();
    let (signals, rx) = tokio::sync::mpsc::channel(4);
    let serving = tokio::spawn({
        let runner = runner.clone();
        async move { serve_with(&runner, rx).await }
    });
    let proxy = proxy_on(&broker).await;
    let reply = proxy
        .service("service_y")
        .call_async::<u64>("sleep", (100,))
        .await
        .unwrap();
    let container = runner.container("service_y").unwrap();
    while container.running_workers() < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    signals.send(Signal::Terminate).await.unwrap();
    assert_eq!(reply.result().await.unwrap(), 100);
    let served = serving.await.unwrap();
    assert!(
        matches!(
            served,
            Served::Stopped {
                signal: Signal::Terminate,
                ..
            }
        ),
        "{served:?}"
    );
    assert!(served.is_clean());
    assert_eq!(served.exit_code(), exit::OK);

    // A second signal during a stop that waits for a long call kills at once.
    let runner = runner_on(&broker, Config::new());
    runner.add::<ServiceY>().unwrap();
    runner.start().await.unwrap();
    let (signals, rx) = tokio::sync::mpsc::channel(4);
    let serving = tokio::spawn({
        let runner = runner.clone();
        async move { serve_with(&runner, rx).await }
    });
    let _slow = proxy
        .service("service_y")
        .call_async::<u64>("sleep", (60_000,))
        .await
        .unwrap();
    let container = runner.container("service_y").unwrap();
    while container.running_workers() < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    signals.send(Signal::Interrupt).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(container.state(), ContainerState::Stopping);
    signals.send(Signal::Interrupt).await.unwrap();
    let served = tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            served,
            Served::Killed {
                signal: Signal::Interrupt
            }
        ),
        "{served:?}"
    );
    assert_eq!(served.exit_code(), exit::FORCED);
    assert_eq!(container.state(), ContainerState::Killed);
    proxy.stop().await;
}

#[tokio::test]
async fn a_stop_forced_by_the_shutdown_deadline_is_not_clean() {
    let broker = MemoryBroker::new();
    let runner = runner_on(&broker, Config::new().with("SHUTDOWN_TIMEOUT", 0.2));
    runner.add::<ServiceY>().unwrap();
    runner.start().await.unwrap();
    let (signals, rx) = tokio::sync::mpsc::channel(4);
    let serving = tokio::spawn({
        let runner = runner.clone();
        async move { serve_with(&runner, rx).await }
    });
    let proxy = proxy_on(&broker).await;
    let _slow = proxy
        .service("service_y")
        .call_async::<u64>("sleep", (60_000,))
        .await
        .unwrap();
    let container = runner.container("service_y").unwrap();
    while container.running_workers() < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    signals.send(Signal::Terminate).await.unwrap();
    let served = tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .unwrap()
        .unwrap();
    match &served {
        Served::Stopped { report, .. } => assert!(report.was_forced(), "{report}"),
        other => panic!("expected a forced stop, got {other:?}"),
    }
    assert!(!served.is_clean());
    assert_eq!(served.exit_code(), exit::FORCED);
    proxy.stop().await;
}

#[tokio::test]
async fn containers_built_beforehand_run_with_the_others() {
    let broker = MemoryBroker::new();
    let transport: Arc<dyn Transport> = Arc::new(broker.connect());
    let prebuilt = ServiceContainer::<ServiceY>::new(transport, Config::new()).unwrap();
    let runner = runner_on(&broker, Config::new());
    runner
        .add_container(Arc::new(prebuilt.clone()))
        .unwrap()
        .add::<ServiceX>()
        .unwrap();
    assert_eq!(runner.service_names(), ["service_y", "service_x"]);
    runner.start().await.unwrap();
    assert_eq!(prebuilt.state(), ContainerState::Running);
    let proxy = proxy_on(&broker).await;
    let out: String = proxy
        .service("service_x")
        .call("remote_method", ("d",))
        .await
        .unwrap();
    assert_eq!(out, "d-y-x");
    assert!(runner.stop().await.is_clean());
    assert_eq!(prebuilt.state(), ContainerState::Stopped);
    assert_eq!(
        broker.connections().len(),
        2,
        "the prebuilt container's connection and the proxy's stay open"
    );
    let started =
        ServiceContainer::<ServiceY>::new(Arc::new(broker.connect()), Config::new()).unwrap();
    started.start().await.unwrap();
    let error = runner_on(&broker, Config::new())
        .add_container(Arc::new(started.clone()))
        .unwrap_err();
    assert!(
        matches!(
            error,
            RunnerError::Container {
                service: "service_y",
                ..
            }
        ),
        "{error:?}"
    );
    started.stop().await.unwrap();
    proxy.stop().await;
}

#[tokio::test]
async fn serving_ends_with_a_crash_when_a_service_crashes() {
    let broker = MemoryBroker::new();
    let runner = runner_on(&broker, Config::new());
    runner.add::<Crashy>().unwrap().add::<ServiceY>().unwrap();
    runner.start().await.unwrap();
    let (_signals, rx) = tokio::sync::mpsc::channel(1);
    let serving = tokio::spawn({
        let runner = runner.clone();
        async move { serve_with(&runner, rx).await }
    });
    let proxy = proxy_on(&broker).await;
    let _ = proxy
        .service("crashy")
        .with_timeout(Duration::from_millis(500))
        .call::<Value>("crash", ())
        .await;
    let served = tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            &served,
            Served::Crashed(RunnerError::Crashed {
                service: "crashy",
                ..
            })
        ),
        "{served:?}"
    );
    assert_eq!(served.exit_code(), exit::CRASHED);
    assert_eq!(
        runner.container("service_y").unwrap().state(),
        ContainerState::Stopped
    );
    proxy.stop().await;
}

// ---------------------------------------------------------------------------------------
// A service binary, stopped by signals, on RabbitMQ
// ---------------------------------------------------------------------------------------

/// Waits until `runner_example` answers.
async fn wait_until_serving(proxy: &ClusterRpcProxy) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match proxy
            .service("runner_example")
            .with_timeout(Duration::from_secs(5))
            .call::<Value>("echo", ("ready?",))
            .await
        {
            Ok(_) => return,
            Err(RpcError::UnknownService(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("the service binary did not come up: {error}"),
        }
    }
}

async fn wait_until_running(proxy: &ClusterRpcProxy, calls: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let running: usize = proxy
            .service("runner_example")
            .call("running", ())
            .await
            .unwrap();
        if running == calls {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{running} of {calls} calls running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_every_call_in_flight_then_exits_0() {
    let Some(cluster) = TestCluster::rabbitmq().await else {
        return;
    };
    let binary = example_binary("runner_service");
    let uri = cluster.amqp_uri().unwrap().to_owned();
    let process = ServiceProcess::start(
        &binary,
        &["run", "-d", "SHUTDOWN_TIMEOUT=30"],
        &[("AMQP_URI", &uri)],
    );
    let proxy = cluster.proxy().await;
    wait_until_serving(&proxy).await;

    const CALLS: usize = 6;
    let service = proxy
        .service("runner_example")
        .with_timeout(Duration::from_secs(30));
    let mut replies = Vec::new();
    for i in 0..CALLS {
        let millis = 1500 + 10 * i as u64;
        replies.push((
            millis,
            service.call_async::<u64>("sleep", (millis,)).await.unwrap(),
        ));
    }
    wait_until_running(&proxy, CALLS).await;
    process.signal("TERM");
    for (millis, reply) in replies {
        assert_eq!(
            reply.result().await.unwrap(),
            millis,
            "every call in flight is answered"
        );
    }
    let (code, stderr) = process.exit(Duration::from_secs(30)).await;
    assert_eq!(code, Some(0), "a clean stop exits 0; stderr:\n{stderr}");
    for expected in [
        "services started",
        "runner_example",
        "amqp://guest:***@",
        "SIGTERM",
        "services stopped",
    ] {
        assert!(
            stderr.contains(expected),
            "`{expected}` missing from the log:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains(":guest@"),
        "the password leaked into the log:\n{stderr}"
    );
    let gone = proxy
        .service("runner_example")
        .call::<Value>("echo", (1,))
        .await;
    assert!(
        matches!(
            gone,
            Err(RpcError::UnknownService(_) | RpcError::Timeout(_))
        ),
        "{gone:?}"
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_ctrl_c_kills_at_once_and_exits_7() {
    let Some(cluster) = TestCluster::rabbitmq().await else {
        return;
    };
    let binary = example_binary("runner_service");
    let uri = cluster.amqp_uri().unwrap().to_owned();
    let process = ServiceProcess::start(&binary, &["run"], &[("AMQP_URI", &uri)]);
    let proxy = cluster.proxy().await;
    wait_until_serving(&proxy).await;
    let service = proxy.service("runner_example");
    let _long = service.call_async::<u64>("sleep", (60_000,)).await.unwrap();
    wait_until_running(&proxy, 1).await;
    process.signal("INT");
    tokio::time::sleep(Duration::from_millis(300)).await;
    process.signal("INT");
    let started = Instant::now();
    let (code, stderr) = process.exit(Duration::from_secs(10)).await;
    assert_eq!(code, Some(i32::from(exit::FORCED)), "stderr:\n{stderr}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(stderr.contains("second signal"), "{stderr}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_on_the_memory_broker_logs_at_the_configured_level_and_stops_on_sigterm() {
    let binary = example_binary("runner_service");
    let dict_config = "LOGGING={version: 1, root: {level: DEBUG}}";
    let process = ServiceProcess::start(
        &binary,
        &["run", "--broker", "memory://", "-d", dict_config],
        &[],
    );
    process.wait_for_log("services started").await;
    process.signal("TERM");
    let (code, stderr) = process.exit(Duration::from_secs(30)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("broker=memory://"), "{stderr}");
    assert!(
        stderr.contains(" DEBUG "),
        "LOGGING's root level applies:\n{stderr}"
    );

    // RUST_LOG wins over LOGGING.
    let process = ServiceProcess::start(
        &binary,
        &["run", "-d", "LOGGING=ERROR"],
        &[("AMQP_URI", "memory://"), ("RUST_LOG", "info")],
    );
    process.wait_for_log("services started").await;
    process.signal("TERM");
    let (code, stderr) = process.exit(Duration::from_secs(30)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.contains(" DEBUG "), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_fails_with_the_exit_code_of_its_failure() {
    let binary = example_binary("runner_service");
    let cases: [(&[&str], u8, &str); 4] = [
        (
            &["run", "nope", "--broker", "memory://"],
            exit::USAGE,
            "no service `nope` here; the services are: runner_example",
        ),
        (
            &["run", "--broker", "memory://", "-d", "max_workers=many"],
            exit::USAGE,
            "config key `max_workers` must be a positive integer",
        ),
        (
            &["run", "-d", "LOGGING=LOUD", "--broker", "memory://"],
            exit::USAGE,
            "`LOUD` is not a log level",
        ),
        (
            &["run", "--broker", "amqp://app:hunter2@127.0.0.1:1/"],
            exit::CONNECTION,
            "service `runner_example`: cannot connect to amqp://app:***@127.0.0.1:1/",
        ),
    ];
    for (args, expected_code, expected) in cases {
        let process = ServiceProcess::start(&binary, args, &[]);
        let (code, stderr) = process.exit(Duration::from_secs(30)).await;
        assert_eq!(code, Some(i32::from(expected_code)), "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: `{expected}` missing from:\n{stderr}"
        );
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}

#[test]
fn exit_codes_are_distinct_where_they_must_be() {
    let codes = [
        exit::OK,
        exit::REMOTE_ERROR,
        exit::USAGE,
        exit::UNKNOWN_SERVICE,
        exit::TIMEOUT,
        exit::CONNECTION,
        exit::FAILURE,
        exit::FORCED,
    ];
    let mut sorted = codes.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), codes.len());
}
