//! Broker outages on a real RabbitMQ: every connection closed by the broker, and a full
//! broker restart, while 1,000 calls and 1,000 reliable events are in flight; a service
//! started before its broker; SIGTERM to a service process during 500 calls. Every call
//! ends within its timeout (answered, or failed with a clear error), every event is
//! handled at least once, nothing hangs, and the service serves again within 5 seconds.
//!
//! The scenarios stop and restart the broker (`rabbitmqctl stop_app` / `start_app`), so
//! they run one at a time, each in a fresh virtual host, and always leave the broker
//! running, even when they fail. They are skipped without a broker or without
//! `rabbitmqctl`, unless `NAMEKO_REQUIRE_AMQP=1`. `--nocapture` shows the figures they
//! measure (the ones in RELIABILITY.md).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use nameko::amqp::AmqpUri;
use nameko::amqp::test_support::broker_required;
use nameko::config::Config;
use nameko::prelude::*;
use nameko::testing::TestCluster;
use nameko::transport::{Transport, TransportStatus};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The RPC timeout of the load's calls.
const RPC_TIMEOUT: Duration = Duration::from_secs(20);
/// Calls and events in flight during a fault.
const CALLS: i64 = 1000;
const EVENTS: i64 = 1000;
/// How long each call works.
const WORK: Duration = Duration::from_millis(40);
/// The longest a service may take to serve again once the broker is back.
const RECOVERY_BOUND: Duration = Duration::from_secs(5);

/// One scenario at a time: a broker restart must not hit another scenario's clients.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------------------
// The service, and what it counts
// ---------------------------------------------------------------------------------------

/// How many times each call started and each event was handled, by number.
struct Tally {
    calls: BTreeMap<i64, u32>,
    events: BTreeMap<i64, u32>,
}

static TALLY: Mutex<Tally> = Mutex::new(Tally {
    calls: BTreeMap::new(),
    events: BTreeMap::new(),
});

fn tally() -> MutexGuard<'static, Tally> {
    TALLY.lock().unwrap_or_else(PoisonError::into_inner)
}

fn reset_tally() {
    let mut tally = tally();
    tally.calls.clear();
    tally.events.clear();
}

#[derive(Dependencies)]
struct Worker;

#[service(name = "worker")]
impl Worker {
    /// Works for `millis`, then returns `n`. Calls numbered from 0 are counted.
    #[rpc]
    async fn work(&self, n: i64, millis: u64) -> i64 {
        if n >= 0 {
            *tally().calls.entry(n).or_default() += 1;
        }
        tokio::time::sleep(Duration::from_millis(millis)).await;
        n
    }

    /// Counts the item (service pool, reliable delivery: a durable queue).
    #[event_handler("feeder", "item")]
    async fn on_item(&self, item: Value) {
        let n = item["n"].as_i64().unwrap_or(-1);
        *tally().events.entry(n).or_default() += 1;
    }
}

// ---------------------------------------------------------------------------------------
// rabbitmqctl, and keeping the broker up
// ---------------------------------------------------------------------------------------

/// Runs `rabbitmqctl` (blocking), killed after `within`; its output, or why it failed.
fn rabbitmqctl(args: &[&str], within: Duration) -> Result<String, String> {
    nameko::testing::rabbitmqctl(args, within).map_err(|e| e.to_string())
}

/// [`rabbitmqctl`] off the runtime's threads.
async fn ctl(args: &[&str], within: Duration) -> Result<String, String> {
    let args: Vec<String> = args.iter().map(|&a| a.to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        rabbitmqctl(&args, within)
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Set while this process has the broker's application stopped.
static BROKER_STOPPED: AtomicBool = AtomicBool::new(false);

/// Stops the broker's application, and starts it again when dropped if the test did not
/// (a failing test must not leave the broker down for the tests that follow).
struct BrokerOutage;

impl BrokerOutage {
    async fn begin() -> Self {
        // Made first, so that a failing `stop_app` still ends with the broker started.
        let outage = Self;
        BROKER_STOPPED.store(true, Ordering::SeqCst);
        ctl(&["stop_app"], Duration::from_secs(60))
            .await
            .expect("rabbitmqctl stop_app");
        outage
    }

    /// Starts the broker again; returns how long `start_app` took.
    async fn end(self) -> Duration {
        let started = Instant::now();
        ctl(&["start_app"], Duration::from_secs(90))
            .await
            .expect("rabbitmqctl start_app");
        BROKER_STOPPED.store(false, Ordering::SeqCst);
        started.elapsed()
    }
}

impl Drop for BrokerOutage {
    fn drop(&mut self) {
        if BROKER_STOPPED.swap(false, Ordering::SeqCst) {
            eprintln!("restarting the broker after a failed scenario");
            if let Err(error) = rabbitmqctl(&["start_app"], Duration::from_secs(90))
                .and_then(|_| rabbitmqctl(&["await_startup"], Duration::from_secs(90)))
            {
                eprintln!("could not restart the broker: {error}");
            }
        }
    }
}

/// A cluster in a fresh virtual host, or `None` (after saying why) without a broker or
/// without a working `rabbitmqctl`.
async fn outage_cluster() -> Option<TestCluster> {
    // Enough workers that the requests held up by an outage drain in well under a second
    // once it is over.
    let cluster = TestCluster::rabbitmq()
        .await?
        .with_config("max_workers", 50)
        .with_config("PREFETCH_COUNT", 50);
    if let Err(error) = ctl(&["-q", "list_vhosts"], Duration::from_secs(20)).await {
        assert!(
            !broker_required(),
            "rabbitmqctl does not work ({error}) and NAMEKO_REQUIRE_AMQP=1"
        );
        eprintln!("skipping: these tests need a working rabbitmqctl ({error})");
        return None;
    }
    Some(cluster)
}

fn vhost_of(cluster: &TestCluster) -> String {
    let uri: AmqpUri = cluster
        .amqp_uri()
        .expect("a RabbitMQ cluster")
        .parse()
        .expect("the cluster's URI parses");
    uri.vhost().to_owned()
}

// ---------------------------------------------------------------------------------------
// Load: calls from several proxies, events from several dispatchers
// ---------------------------------------------------------------------------------------

/// How long the load takes to go out. Calls and events are issued at a steady rate, below
/// what the service can take, so that when the fault hits some are in every stage: not
/// sent yet, being published, queued, running, replied to.
const PACE: Duration = Duration::from_secs(6);

/// How one call ended, and how long it took.
struct CallOutcome {
    n: i64,
    result: Result<i64, RpcError>,
    took: Duration,
}

/// How one event's dispatch ended.
struct DispatchOutcome {
    n: i64,
    published: bool,
    /// Attempts that failed (and were tried again).
    failed_attempts: Vec<String>,
}

/// How far the load got.
#[derive(Default)]
struct Progress {
    calls_issued: AtomicUsize,
    calls_ended: AtomicUsize,
    events_published: AtomicUsize,
}

/// What was in flight at one moment.
#[derive(Debug)]
struct InFlight {
    /// Calls issued and not answered yet.
    calls_outstanding: usize,
    /// Calls not answered yet, issued or not.
    calls_unanswered: usize,
    /// Events not handled yet, dispatched or not.
    events_unhandled: usize,
}

impl Progress {
    fn in_flight(&self) -> InFlight {
        let issued = self.calls_issued.load(Ordering::SeqCst);
        let ended = self.calls_ended.load(Ordering::SeqCst);
        InFlight {
            calls_outstanding: issued - ended,
            calls_unanswered: CALLS as usize - ended,
            events_unhandled: EVENTS as usize - tally().events.len(),
        }
    }
}

/// The clients of a load: 4 proxies and 2 dispatchers, each on a connection of its own.
struct Clients {
    connections: Vec<Arc<dyn Transport>>,
    proxies: Vec<ClusterRpcProxy>,
    dispatchers: Vec<StandaloneDispatcher>,
}

impl Clients {
    async fn connect(cluster: &TestCluster) -> Self {
        let mut clients = Self {
            connections: Vec::new(),
            proxies: Vec::new(),
            dispatchers: Vec::new(),
        };
        for _ in 0..4 {
            let connection = cluster.connect().await;
            let proxy = ClusterRpcProxy::start(Arc::clone(&connection), cluster.config())
                .await
                .expect("a proxy starts");
            clients.connections.push(connection);
            clients.proxies.push(proxy);
        }
        for _ in 0..2 {
            let connection = cluster.connect().await;
            let dispatcher = StandaloneDispatcher::new(Arc::clone(&connection), cluster.config())
                .expect("a dispatcher");
            clients.connections.push(connection);
            clients.dispatchers.push(dispatcher);
        }
        clients
    }

    /// Waits (bounded) until one of the connections is lost; when that was seen.
    async fn until_lost(&self) -> Instant {
        let mut watchers = JoinSet::new();
        for connection in &self.connections {
            let mut status = connection.status();
            watchers.spawn(async move {
                let lost = status
                    .wait_for(|s| matches!(s, TransportStatus::Reconnecting { .. }))
                    .await
                    .is_ok();
                lost.then(Instant::now)
            });
        }
        tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(joined) = watchers.join_next().await {
                if let Ok(Some(at)) = joined {
                    return at;
                }
            }
            panic!("every connection closed for good");
        })
        .await
        .expect("the connections were lost within 60 s")
    }

    /// Waits (bounded) until every connection is up.
    async fn until_connected(&self) {
        for connection in &self.connections {
            let mut status = connection.status();
            tokio::time::timeout(
                Duration::from_secs(60),
                status.wait_for(|s| *s == TransportStatus::Connected),
            )
            .await
            .expect("every client reconnects within 60 s")
            .expect("the connection is not closed");
        }
    }

    async fn close(self) {
        for proxy in &self.proxies {
            proxy.stop().await;
        }
        for connection in &self.connections {
            let _ = connection.close().await;
        }
    }
}

/// The load in flight.
struct Load {
    progress: Arc<Progress>,
    calls: tokio::task::JoinHandle<Vec<CallOutcome>>,
    events: tokio::task::JoinHandle<Vec<DispatchOutcome>>,
}

impl Load {
    /// Starts issuing `CALLS` calls over the proxies and `EVENTS` events over the
    /// dispatchers, each spread evenly over `PACE`.
    fn start(clients: &Clients) -> Self {
        let progress = Arc::new(Progress::default());
        let workers: Vec<RpcProxy> = clients
            .proxies
            .iter()
            .map(|p| p.service("worker").with_timeout(RPC_TIMEOUT))
            .collect();
        let calls = tokio::spawn(issue_calls(workers, Arc::clone(&progress)));
        let events = tokio::spawn(issue_events(
            clients.dispatchers.clone(),
            Arc::clone(&progress),
        ));
        Self {
            progress,
            calls,
            events,
        }
    }

    /// Waits (bounded) for every call and dispatch to end.
    async fn finish(self) -> (Vec<CallOutcome>, Vec<DispatchOutcome>) {
        let bound = PACE + RPC_TIMEOUT * 3;
        let calls = tokio::time::timeout(bound, self.calls)
            .await
            .expect("every call ends")
            .expect("the calls task");
        let events = tokio::time::timeout(bound, self.events)
            .await
            .expect("every dispatch ends")
            .expect("the events task");
        (calls, events)
    }
}

async fn issue_calls(workers: Vec<RpcProxy>, progress: Arc<Progress>) -> Vec<CallOutcome> {
    let mut calls = JoinSet::new();
    let mut ticks = tokio::time::interval(PACE / CALLS as u32);
    for n in 0..CALLS {
        ticks.tick().await;
        let worker = workers[n as usize % workers.len()].clone();
        let progress = Arc::clone(&progress);
        progress.calls_issued.fetch_add(1, Ordering::SeqCst);
        calls.spawn(async move {
            let started = Instant::now();
            // Bounded twice over: the proxy's timeout, and this, which only a hang hits.
            let result = tokio::time::timeout(
                RPC_TIMEOUT * 2,
                worker.call::<i64>("work", (n, WORK.as_millis() as u64)),
            )
            .await
            .unwrap_or_else(|_| panic!("call {n} hung past twice its timeout"));
            progress.calls_ended.fetch_add(1, Ordering::SeqCst);
            CallOutcome {
                n,
                result,
                took: started.elapsed(),
            }
        });
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = calls.join_next().await {
        outcomes.push(joined.expect("a call task panicked"));
    }
    outcomes
}

/// Dispatches every event once; one whose dispatch fails is dispatched again (as a
/// producer that must not lose it does), for at most 30 s.
async fn issue_events(
    dispatchers: Vec<StandaloneDispatcher>,
    progress: Arc<Progress>,
) -> Vec<DispatchOutcome> {
    let mut dispatches = JoinSet::new();
    let mut ticks = tokio::time::interval(PACE / EVENTS as u32);
    for n in 0..EVENTS {
        ticks.tick().await;
        let dispatcher = dispatchers[n as usize % dispatchers.len()].clone();
        let progress = Arc::clone(&progress);
        dispatches.spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut failed_attempts = Vec::new();
            loop {
                let attempt = tokio::time::timeout(
                    Duration::from_secs(30),
                    dispatcher.dispatch("feeder", "item", json!({ "n": n })),
                )
                .await;
                match attempt {
                    Ok(Ok(())) => {
                        progress.events_published.fetch_add(1, Ordering::SeqCst);
                        return DispatchOutcome {
                            n,
                            published: true,
                            failed_attempts,
                        };
                    }
                    Ok(Err(error)) => failed_attempts.push(error.to_string()),
                    Err(_) => failed_attempts.push("the dispatch hung for 30 s".to_owned()),
                }
                if Instant::now() >= deadline {
                    return DispatchOutcome {
                        n,
                        published: false,
                        failed_attempts,
                    };
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = dispatches.join_next().await {
        outcomes.push(joined.expect("a dispatch task panicked"));
    }
    outcomes
}

/// Waits (bounded) until `count` calls were issued.
async fn until_issued(progress: &Progress, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while progress.calls_issued.load(Ordering::SeqCst) < count {
        assert!(Instant::now() < deadline, "the calls did not go out");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Calls `worker.work` until it answers (each call bounded by 1 s); how long that took
/// from `since`.
async fn until_serving(proxy: &ClusterRpcProxy, since: Instant) -> Duration {
    let worker = proxy.service("worker").with_timeout(Duration::from_secs(1));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut probe = -1_i64;
    loop {
        match worker.call::<i64>("work", (probe, 0)).await {
            Ok(n) => {
                assert_eq!(n, probe);
                return since.elapsed();
            }
            Err(error) => {
                assert!(
                    Instant::now() < deadline,
                    "the service did not serve again within 60 s: {error}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        probe -= 1;
    }
}

/// Waits (bounded) until every event in `0..EVENTS` was handled at least once.
async fn until_every_event_handled(within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let missing: Vec<i64> = {
            let tally = tally();
            (0..EVENTS)
                .filter(|n| !tally.events.contains_key(n))
                .collect()
        };
        if missing.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} events never handled, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks that the fault hit with work in every stage.
fn check_in_flight(at_loss: &InFlight) {
    assert!(
        at_loss.calls_outstanding > 0 && at_loss.calls_unanswered >= 100,
        "the fault came too late to hit calls in flight: {at_loss:?}"
    );
    assert!(
        at_loss.events_unhandled >= 100,
        "the fault came too late to hit events in flight: {at_loss:?}"
    );
}

/// Checks how the load ended after a fault, and returns the figures as text.
fn check_load(calls: &[CallOutcome], events: &[DispatchOutcome]) -> String {
    assert_eq!(calls.len(), CALLS as usize, "every call ended");
    let slack = Duration::from_secs(2);
    let mut answered = 0;
    let mut failures: BTreeMap<&str, usize> = BTreeMap::new();
    let mut slowest = Duration::ZERO;
    for call in calls {
        slowest = slowest.max(call.took);
        assert!(
            call.took <= RPC_TIMEOUT + slack,
            "call {} took {:?}, past its timeout of {RPC_TIMEOUT:?}",
            call.n,
            call.took
        );
        match &call.result {
            Ok(n) => {
                assert_eq!(*n, call.n, "a call got another call's reply");
                answered += 1;
            }
            Err(error) => {
                let kind = match error {
                    RpcError::Timeout(_) => "timeout",
                    RpcError::Transport(_) => "transport",
                    RpcError::RepliesLost(_) => "replies lost",
                    other => panic!("call {} failed with an unclear error: {other:?}", call.n),
                };
                let count = failures.entry(kind).or_default();
                *count += 1;
                if *count == 1 {
                    eprintln!("call {} failed ({kind}): {error}", call.n);
                }
            }
        }
    }
    let unpublished: Vec<_> = events.iter().filter(|e| !e.published).collect();
    assert!(
        unpublished.is_empty(),
        "events never published: {:?}",
        unpublished
            .iter()
            .map(|e| (e.n, &e.failed_attempts))
            .collect::<Vec<_>>()
    );
    let failed_attempts: usize = events.iter().map(|e| e.failed_attempts.len()).sum();
    let tally = tally();
    let ran_twice = tally.calls.values().filter(|&&c| c > 1).count();
    let failed_but_ran = calls
        .iter()
        .filter(|c| c.result.is_err() && tally.calls.contains_key(&c.n))
        .count();
    let handled_twice = tally.events.values().filter(|&&c| c > 1).count();
    format!(
        "calls: {answered} answered, {} failed {failures:?} ({failed_but_ran} of those ran), \
         {ran_twice} ran more than once, the slowest took {slowest:.2?}; events: all {EVENTS} \
         handled, {failed_attempts} dispatch attempts failed and were tried again, \
         {handled_twice} handled more than once",
        CALLS as usize - answered,
    )
}

// ---------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------

/// `rabbitmqctl close_all_connections` while 1,000 calls from 4 proxies and 1,000
/// reliable events from 2 dispatchers are in flight to 2 instances of a service: the
/// broker closes every connection (as an operator, a node put into maintenance or a
/// network partition does), and every client and service recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_every_connection_with_calls_and_events_in_flight() {
    let _serial = SERIAL.lock().await;
    let Some(mut cluster) = outage_cluster().await else {
        return;
    };
    reset_tally();
    cluster.start::<Worker>().await;
    cluster.start::<Worker>().await;
    let clients = Clients::connect(&cluster).await;
    let load = Load::start(&clients);
    until_issued(&load.progress, 50).await;

    let vhost = vhost_of(&cluster);
    let issued = Instant::now();
    let command = tokio::spawn(async move {
        let reason = "nameko-rs outage test";
        ctl(
            &["close_all_connections", "-p", &vhost, reason],
            Duration::from_secs(30),
        )
        .await
    });
    let lost = clients.until_lost().await;
    let at_loss = load.progress.in_flight();
    let recovery = until_serving(&clients.proxies[0], lost).await;
    clients.until_connected().await;
    let reconnected = lost.elapsed();
    command
        .await
        .expect("the command task")
        .expect("rabbitmqctl close_all_connections");
    let (calls, events) = load.finish().await;
    until_every_event_handled(Duration::from_secs(30)).await;
    let settled = lost.elapsed();
    check_in_flight(&at_loss);
    let figures = check_load(&calls, &events);
    println!(
        "close_all_connections: the connections were lost {:.2?} after the command was \
         issued, with {at_loss:?}; a new call was answered {recovery:.2?} after the loss; \
         everything settled {settled:.2?} after it (every client was connected again \
         after {reconnected:.2?}); {figures}",
        lost - issued
    );
    assert!(
        recovery < RECOVERY_BOUND,
        "the service served again only {recovery:?} after the connections were lost"
    );
    clients.close().await;
    cluster.shutdown().await;
}

/// A full broker restart (`rabbitmqctl stop_app`, then `start_app`) with the same load
/// in flight: durable queues and persistent messages survive it, every client
/// reconnects, and the service serves within 5 s of the broker being back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_with_calls_and_events_in_flight() {
    let _serial = SERIAL.lock().await;
    let Some(mut cluster) = outage_cluster().await else {
        return;
    };
    reset_tally();
    cluster.start::<Worker>().await;
    cluster.start::<Worker>().await;
    let clients = Clients::connect(&cluster).await;
    let load = Load::start(&clients);
    until_issued(&load.progress, 150).await;

    let stopping = Instant::now();
    let (outage, lost) = tokio::join!(BrokerOutage::begin(), clients.until_lost());
    let at_loss = load.progress.in_flight();
    let stop_took = stopping.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let start_took = outage.end().await;
    let back = Instant::now();
    let down = back - lost;
    let recovery = until_serving(&clients.proxies[0], back).await;
    clients.until_connected().await;
    let reconnected = back.elapsed();
    let (calls, events) = load.finish().await;
    until_every_event_handled(Duration::from_secs(30)).await;
    let settled = back.elapsed();
    check_in_flight(&at_loss);
    let figures = check_load(&calls, &events);
    println!(
        "broker restart: stop_app took {stop_took:.2?}, start_app {start_took:.2?}; the \
         connections were lost {:.2?} after stop_app was issued, with {at_loss:?}; the broker \
         was down about {down:.2?}; a new call was answered {recovery:.2?} after start_app \
         returned; everything settled {settled:.2?} after it (every client was connected \
         again after {reconnected:.2?}); {figures}",
        lost - stopping
    );
    assert!(
        recovery < RECOVERY_BOUND,
        "the service served again only {recovery:?} after the broker was back"
    );
    clients.close().await;
    cluster.shutdown().await;
}

/// A service started while the broker is down, with `AMQP_STARTUP: wait`, keeps trying
/// and serves within 5 s of the broker being back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_started_before_its_broker_serves_once_it_is_up() {
    let _serial = SERIAL.lock().await;
    let Some(cluster) = outage_cluster().await else {
        return;
    };
    let uri = cluster.amqp_uri().expect("RabbitMQ").to_owned();
    let config = Config::new()
        .with("AMQP_URI", uri.as_str())
        .with("AMQP_STARTUP", "wait")
        .with("AMQP_STARTUP_TIMEOUT", 60);

    let outage = BrokerOutage::begin().await;
    let service = tokio::spawn({
        let config = config.clone();
        async move {
            let transport = nameko::connect(&config).await?;
            let container = ServiceContainer::<Worker>::new(transport, config)?;
            container.start().await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(container)
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    if service.is_finished() {
        let outcome = service.await.map(|r| r.map(|_| ()));
        panic!("the service gave up while the broker was down: {outcome:?}");
    }
    let start_took = outage.end().await;
    let back = Instant::now();
    let transport = nameko::connect(&config)
        .await
        .expect("connecting the proxy");
    let proxy = ClusterRpcProxy::start(Arc::clone(&transport), &config)
        .await
        .expect("the proxy starts");
    let recovery = until_serving(&proxy, back).await;
    let container = tokio::time::timeout(Duration::from_secs(10), service)
        .await
        .expect("the service's start ends")
        .expect("the start task")
        .expect("the service started");
    println!(
        "service started before its broker: start_app took {start_took:.2?}; the service \
         answered {recovery:.2?} after start_app returned"
    );
    assert!(
        recovery < RECOVERY_BOUND,
        "the service served only {recovery:?} after the broker was back"
    );
    proxy.stop().await;
    let _ = transport.close().await;
    container.stop().await.expect("a clean stop");
    cluster.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// SIGTERM to a service process
// ---------------------------------------------------------------------------------------

/// Builds an example of this crate (a no-op when it is up to date) into the target
/// directory and profile this test runs from, and returns its path.
fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from <target>/<profile>/deps")
        .to_path_buf();
    let target_dir = profile_dir.parent().expect("a target directory");
    let profile = match profile_dir.file_name().and_then(|p| p.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "nameko", "--example", name])
        .args(["--profile", profile, "--target-dir"])
        .arg(target_dir)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build --example {name} failed");
    let path = profile_dir.join("examples").join(name);
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A service process, killed if still running when dropped, whose standard error is
/// collected line by line.
struct ServiceProcess {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl ServiceProcess {
    /// Starts `binary run` with these workers and prefetch window.
    fn start(binary: &Path, amqp_uri: &str, log: &Path, workers: u16, prefetch: u16) -> Self {
        let mut child = Command::new(binary)
            .args(["run", "-d", "SHUTDOWN_TIMEOUT=30", "-d"])
            .arg(format!("max_workers={workers}"))
            .arg("-d")
            .arg(format!("PREFETCH_COUNT={prefetch}"))
            .env("AMQP_URI", amqp_uri)
            .env("OUTAGE_SERVICE_LOG", log)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the service binary starts");
        let pipe = child.stderr.take().expect("piped standard error");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let lines = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                lines
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(line);
            }
        });
        Self { child, stderr }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .join("\n")
    }

    /// Waits (bounded) until the process logged `text`.
    async fn until_logged(&self, text: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.stderr().contains(text) {
            assert!(
                Instant::now() < deadline,
                "`{text}` not logged within {within:?}:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM {}", self.pid());
    }

    /// Waits (bounded) for the process to exit; its exit code.
    async fn exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "the service did not exit within {within:?}:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The calls recorded in the service's log: for each call id, the pids that ran it.
fn recorded(log: &Path) -> HashMap<String, Vec<u32>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut runs: HashMap<String, Vec<u32>> = HashMap::new();
    for line in text.lines() {
        let (pid, id) = line.split_once(' ').expect("`<pid> <id>` lines");
        runs.entry(id.to_owned())
            .or_default()
            .push(pid.parse().expect("a pid"));
    }
    runs
}

/// Removes a file when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// SIGTERM to a service process while 500 calls are in flight, with a second instance
/// of the service running (a rolling restart): the stopping process finishes the calls it
/// started and gives back the ones it had only prefetched; every call is answered once,
/// none runs twice, and the process exits with 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_500_calls_answers_every_call_once_and_exits_0() {
    const IN_FLIGHT: usize = 500;
    let _serial = SERIAL.lock().await;
    let Some(cluster) = TestCluster::rabbitmq().await else {
        return;
    };
    let binary = example_binary("outage_service");
    let uri = cluster.amqp_uri().expect("RabbitMQ").to_owned();
    let log = TempFile(std::env::temp_dir().join(format!(
        "nameko-outage-{}-{}.log",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    )));
    // The first instance prefetches more than it runs at once: at SIGTERM some of its
    // requests are running and some are waiting in its prefetch window.
    let mut first = ServiceProcess::start(&binary, &uri, &log.0, 10, 30);
    first
        .until_logged("services started", Duration::from_secs(30))
        .await;
    let proxy = cluster.proxy().await;
    let service = proxy
        .service("outage_service")
        .with_timeout(Duration::from_secs(60));

    let mut calls = JoinSet::new();
    for i in 0..IN_FLIGHT {
        let service = service.clone();
        calls.spawn(async move {
            let id = format!("call-{i}");
            let result = service.call::<String>("work", (id.as_str(), 200)).await;
            (id, result)
        });
    }
    let mut second = ServiceProcess::start(&binary, &uri, &log.0, 50, 50);
    second
        .until_logged("services started", Duration::from_secs(30))
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while recorded(&log.0).len() < 20 {
        assert!(Instant::now() < deadline, "the calls did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ran_before = recorded(&log.0).len();
    assert!(
        ran_before <= IN_FLIGHT - 100,
        "{ran_before} calls had already run before SIGTERM"
    );
    let terminated = Instant::now();
    first.terminate();
    let code = first.exit(Duration::from_secs(40)).await;
    let exit_took = terminated.elapsed();
    assert_eq!(
        code,
        Some(0),
        "a graceful stop exits 0; stderr:\n{}",
        first.stderr()
    );

    let results = tokio::time::timeout(Duration::from_secs(90), async {
        let mut results = Vec::new();
        while let Some(joined) = calls.join_next().await {
            results.push(joined.expect("a call task"));
        }
        results
    })
    .await
    .expect("every call ends");
    let answered_in = terminated.elapsed();
    for (id, result) in &results {
        match result {
            Ok(echo) => assert_eq!(echo, id),
            Err(error) => panic!("{id} was not answered: {error}"),
        }
    }
    let runs = recorded(&log.0);
    let twice: Vec<_> = runs.iter().filter(|(_, pids)| pids.len() > 1).collect();
    assert!(twice.is_empty(), "calls that ran more than once: {twice:?}");
    assert_eq!(runs.len(), IN_FLIGHT, "every call ran");
    let by_first = runs.values().filter(|pids| pids[0] == first.pid()).count();
    assert!(
        by_first > 0 && by_first < IN_FLIGHT,
        "both processes served"
    );
    // The stopping process logs how many prefetched requests it gave back.
    let stderr = first.stderr();
    let requeued = stderr
        .split("requeued=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .unwrap_or("0");
    println!(
        "SIGTERM during {IN_FLIGHT} calls: the stopped process ran {by_first} calls, gave \
         back {requeued} prefetched requests and exited 0 {exit_took:.2?} after SIGTERM; the \
         other ran {}; all {} answered ({answered_in:.2?} after SIGTERM), {} ran twice",
        IN_FLIGHT - by_first,
        results.len(),
        twice.len()
    );

    second.terminate();
    assert_eq!(
        second.exit(Duration::from_secs(40)).await,
        Some(0),
        "{}",
        second.stderr()
    );
    proxy.stop().await;
    cluster.shutdown().await;
}
