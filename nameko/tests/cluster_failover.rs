//! Failover on a real three-node RabbitMQ cluster (`scripts/rabbitmq-cluster`), with
//! quorum queues, under load from a Rust and a Python nameko client (100 calls in flight
//! each):
//!
//! - the node the service is connected to is killed (`kill -9` of its Erlang VM): every
//!   call is answered or fails with a clear error within its timeout, none hangs, the
//!   service consumes again within 5 s, and no request is lost (every request the broker
//!   confirmed ran on the service, counted on both sides); the node is brought back and
//!   the node the service moved to is killed in turn;
//! - three instances of the service on the same queues, one killed with `kill -9`
//!   mid-load: every call is answered (its requests redelivered to the survivors);
//! - the node a *caller* is connected to is killed: its classic reply queue is lost with
//!   the node, the calls waiting on it fail at once with `RepliesLost`, and the caller
//!   moves to a fresh reply queue: its next calls are answered within 5 s of the kill.
//!
//! They take minutes, so they are `#[ignore]`d: `cargo test -p nameko --test
//! cluster_failover -- --ignored --nocapture` runs them (`.ci/run` does, after
//! `scripts/rabbitmq-cluster up`). The service is `examples/outage_service.rs`, which
//! records every call it starts. The tests start the cluster when it is not running (and stop it again afterwards), and skip
//! saying why when it cannot start, unless `NAMEKO_REQUIRE_CLUSTER=1`. The Python client
//! needs the environment of `scripts/python-env` (skipped without it unless
//! `NAMEKO_REQUIRE_PYTHON=1`). `NAMEKO_CLUSTER_LOAD_SECS` sets how long the load runs
//! (default 20: half before the first fault, half after the last recovery).
//! `--nocapture` prints the figures recorded in RELIABILITY.md.

mod cluster_support;
mod process_support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use cluster_support::{RabbitCluster, required};
use nameko::config::Config;
use nameko::prelude::*;
use process_support::{ServiceProcess, example_binary};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Calls in flight from each client.
const IN_FLIGHT: usize = 100;
/// How long each call works, in milliseconds.
const WORK_MILLIS: u64 = 10;
/// The timeout of every call.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest a service may take to consume again after its node went.
const RECOVERY_BOUND: Duration = Duration::from_secs(5);

/// One test at a time: each kills nodes or instances under the other's feet otherwise.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn load_duration() -> Duration {
    let secs = std::env::var("NAMEKO_CLUSTER_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s >= 5.0)
        .unwrap_or(20.0);
    Duration::from_secs_f64(secs)
}

// ---------------------------------------------------------------------------------------
// The service processes, and what they record
// ---------------------------------------------------------------------------------------

struct Instances {
    binary: PathBuf,
    dir: PathBuf,
    record: PathBuf,
    processes: Vec<ServiceProcess>,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A directory of its own under the system's temporary directory, removed when dropped.
    pub(crate) struct Dir(pub(crate) std::path::PathBuf);

    impl Dir {
        pub(crate) fn new() -> Self {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let path = std::env::temp_dir().join(format!(
                "nameko-cluster-failover-{}-{nanos}",
                std::process::id()
            ));
            std::fs::create_dir_all(&path).expect("a temporary directory");
            Self(path)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Instances {
    fn new() -> Self {
        let dir = tempdir::Dir::new();
        Self {
            binary: example_binary("outage_service"),
            dir: dir.0.clone(),
            record: dir.0.join("calls.log"),
            processes: Vec::new(),
            _dir: dir,
        }
    }

    /// Starts one more instance on the cluster, with quorum queues, and waits until it
    /// is connected.
    async fn start(&mut self, uri: &str) -> usize {
        let record = self.record.display().to_string();
        let process = ServiceProcess::start(
            &self.binary,
            &[
                "run",
                "-d",
                "QUEUE_TYPE=quorum",
                "-d",
                "max_workers=20",
                "-d",
                "PREFETCH_COUNT=20",
                "-d",
                "RPC_RETRY_POLICY={max_retries: 10, interval_start: 0.5, interval_step: 0.5, interval_max: 1}",
            ],
            &[
                ("AMQP_URI", uri),
                ("OUTAGE_SERVICE_LOG", &record),
                ("RUST_LOG", "warn,nameko_amqp=info"),
                ("NO_COLOR", "1"),
            ],
        );
        process.wait_for_log("connected to the broker").await;
        self.processes.push(process);
        self.processes.len() - 1
    }

    /// The node instance `i` is connected to now, from its log (`None` while it has
    /// lost its connection and not yet reconnected).
    fn node_of(&self, i: usize) -> Option<usize> {
        let log = self.processes[i].stderr();
        let mut node = None;
        for line in log.lines() {
            if line.contains("lost the connection to the broker") {
                node = None;
            } else if line.contains("connected to the broker") {
                node = line
                    .split("broker=127.0.0.1:")
                    .nth(1)
                    .and_then(|rest| rest.get(..4))
                    .and_then(|port| port.parse::<u16>().ok())
                    .map(|port| usize::from(port - 5680));
            }
        }
        node
    }

    fn reconnections(&self, i: usize) -> usize {
        self.processes[i]
            .stderr()
            .matches("reconnected to the broker")
            .count()
    }

    /// How many times each call id started, and on which process.
    fn recorded(&self) -> (HashMap<String, u32>, HashMap<u32, usize>) {
        let text = std::fs::read_to_string(&self.record).unwrap_or_default();
        let mut ids: HashMap<String, u32> = HashMap::new();
        let mut by_pid: HashMap<u32, usize> = HashMap::new();
        for line in text.lines() {
            if let Some((pid, id)) = line.split_once(' ') {
                *ids.entry(id.to_owned()).or_default() += 1;
                if let Ok(pid) = pid.parse() {
                    *by_pid.entry(pid).or_default() += 1;
                }
            }
        }
        (ids, by_pid)
    }

    fn record_lines(&self) -> usize {
        std::fs::read_to_string(&self.record)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------------------
// The load
// ---------------------------------------------------------------------------------------

/// How one client's calls ended.
#[derive(Debug, Default)]
struct Outcome {
    client: &'static str,
    sent: usize,
    answered: Vec<String>,
    /// Calls whose request was published (confirmed) but which failed: their id and why.
    failed_published: Vec<(String, String)>,
    /// Calls whose request could not be published: their id and why.
    failed_unpublished: Vec<(String, String)>,
    wrong: usize,
    slowest: Duration,
}

impl Outcome {
    fn merge(&mut self, other: Self) {
        self.sent += other.sent;
        self.answered.extend(other.answered);
        self.failed_published.extend(other.failed_published);
        self.failed_unpublished.extend(other.failed_unpublished);
        self.wrong += other.wrong;
        self.slowest = self.slowest.max(other.slowest);
    }
}

/// The Rust client: `IN_FLIGHT` tasks calling in a loop until the deadline.
async fn rust_load(
    uri: String,
    prefix: &'static str,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Outcome {
    let config = Config::new()
        .with("AMQP_URI", uri.as_str())
        .with("RPC_TIMEOUT", CALL_TIMEOUT.as_secs())
        .with(
            "RPC_RETRY_POLICY",
            json!({"max_retries": 10, "interval_start": 0.5, "interval_step": 0.5, "interval_max": 1}),
        );
    let transport = nameko::connect(&config)
        .await
        .expect("the Rust client connects");
    let proxy = Arc::new(
        ClusterRpcProxy::start(Arc::clone(&transport), &config)
            .await
            .expect("the Rust client's proxy"),
    );
    let mut tasks = JoinSet::new();
    for task in 0..IN_FLIGHT {
        let proxy = Arc::clone(&proxy);
        let stop = stop.clone();
        tasks.spawn(async move {
            let mut outcome = Outcome::default();
            let mut seq = 0_u64;
            while !*stop.borrow() {
                let id = format!("{prefix}-{task}-{seq}");
                seq += 1;
                outcome.sent += 1;
                let began = Instant::now();
                // A hang would outlive the call's own timeout: bounded here as well.
                let called = tokio::time::timeout(
                    CALL_TIMEOUT + Duration::from_secs(10),
                    proxy
                        .service("outage_service")
                        .call::<String>("work", (id.clone(), WORK_MILLIS)),
                )
                .await;
                outcome.slowest = outcome.slowest.max(began.elapsed());
                match called {
                    Ok(Ok(answer)) if answer == id => outcome.answered.push(id),
                    Ok(Ok(_)) => outcome.wrong += 1,
                    Ok(Err(RpcError::Transport(error))) => {
                        outcome.failed_unpublished.push((id, error.to_string()));
                    }
                    Ok(Err(error)) => outcome.failed_published.push((id, error.to_string())),
                    Err(_) => outcome
                        .failed_published
                        .push((id, "HUNG past the call's timeout".to_owned())),
                }
            }
            outcome
        });
    }
    let mut total = Outcome {
        client: "Rust",
        ..Outcome::default()
    };
    while let Some(done) = tasks.join_next().await {
        total.merge(done.expect("a load task"));
    }
    if let Ok(proxy) = Arc::try_unwrap(proxy) {
        proxy.stop().await;
    }
    let _ = transport.close().await;
    total
}

const PYTHON_CLIENT: &str = r#"
import collections, json, os, sys, time
from nameko.standalone.rpc import ClusterRpcProxy

uri, stop_file, in_flight, timeout, work, prefix = sys.argv[1:7]
in_flight, timeout, work = int(in_flight), float(timeout), int(work)
result = {"sent": 0, "answered": [], "failed_published": [], "failed_unpublished": [],
          "wrong": 0, "slowest": 0.0}
def going():
    return not os.path.exists(stop_file)

pending = collections.deque()
seq = 0

def settle(entry):
    call_id, began, reply = entry
    try:
        answer = reply.result()
        if answer == call_id:
            result["answered"].append(call_id)
        else:
            result["wrong"] += 1
    except Exception as error:
        result["failed_published"].append([call_id, "%s: %s" % (type(error).__name__, error)])
    result["slowest"] = max(result["slowest"], time.time() - began)

with ClusterRpcProxy({"AMQP_URI": uri}, timeout=timeout) as rpc:
    print("ready", flush=True)
    while going() or pending:
        while going() and len(pending) < in_flight:
            call_id = "%s-%d" % (prefix, seq)
            seq += 1
            result["sent"] += 1
            began = time.time()
            try:
                pending.append((call_id, began, rpc.outage_service.work.call_async(call_id, work)))
            except Exception as error:
                result["failed_unpublished"].append([call_id, "%s: %s" % (type(error).__name__, error)])
        if pending:
            settle(pending.popleft())
print(json.dumps(result), flush=True)
"#;

/// The Python interpreter of `scripts/python-env`, or why there is none.
fn python() -> Result<PathBuf, String> {
    let output = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/python-env"))
        .arg("--check")
        .output()
        .map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(PathBuf::from(
            String::from_utf8_lossy(&output.stdout).trim(),
        ))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

/// The Python client: `ClusterRpcProxy` with `IN_FLIGHT` calls in flight until
/// `stop_file` exists (killed after 10 minutes at most).
async fn python_load(
    python: PathBuf,
    uri: String,
    prefix: &'static str,
    stop_file: PathBuf,
) -> Outcome {
    let output = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .arg("600")
            .arg(python)
            .args(["-c", PYTHON_CLIENT, &uri])
            .arg(&stop_file)
            .arg(IN_FLIGHT.to_string())
            .arg(CALL_TIMEOUT.as_secs().to_string())
            .arg(WORK_MILLIS.to_string())
            .arg(prefix)
            .output()
            .expect("the Python client runs")
    })
    .await
    .expect("the Python client's task");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let Some(summary) = stdout.lines().last().filter(|l| l.starts_with('{')) else {
        panic!(
            "the Python client gave no summary ({}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let value: Value = serde_json::from_str(summary).expect("the Python client's summary");
    let strings = |key: &str| -> Vec<String> {
        value[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let pairs = |key: &str| -> Vec<(String, String)> {
        value[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| {
                        (
                            p[0].as_str().unwrap_or_default().to_owned(),
                            p[1].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    Outcome {
        client: "Python",
        sent: usize::try_from(value["sent"].as_u64().unwrap_or(0)).unwrap_or(0),
        answered: strings("answered"),
        failed_published: pairs("failed_published"),
        failed_unpublished: pairs("failed_unpublished"),
        wrong: usize::try_from(value["wrong"].as_u64().unwrap_or(0)).unwrap_or(0),
        slowest: Duration::from_secs_f64(value["slowest"].as_f64().unwrap_or(0.0)),
    }
}

/// Checks one client's calls against what the services recorded; a line of figures.
fn check(outcome: &Outcome, recorded: &HashMap<String, u32>, every_call_answered: bool) -> String {
    let name = outcome.client;
    let ended = outcome.answered.len()
        + outcome.failed_published.len()
        + outcome.failed_unpublished.len()
        + outcome.wrong;
    assert_eq!(ended, outcome.sent, "{name}: every call ended");
    assert_eq!(outcome.wrong, 0, "{name}: answers to the wrong call");
    assert!(
        outcome.slowest <= CALL_TIMEOUT + Duration::from_secs(2),
        "{name}: a call took {:?}, longer than its timeout",
        outcome.slowest
    );
    let hung: Vec<_> = outcome
        .failed_published
        .iter()
        .filter(|(_, why)| why.contains("HUNG"))
        .collect();
    assert!(hung.is_empty(), "{name}: calls hung: {hung:?}");
    // Counted on both sides: every answered call ran on a service, and so did every call
    // whose request the broker confirmed (none lost).
    let not_run: Vec<&String> = outcome
        .answered
        .iter()
        .chain(outcome.failed_published.iter().map(|(id, _)| id))
        .filter(|id| !recorded.contains_key(*id))
        .collect();
    let lost = not_run.len();
    if !not_run.is_empty() {
        let why: Vec<_> = outcome
            .failed_published
            .iter()
            .filter(|(id, _)| !recorded.contains_key(id))
            .take(5)
            .collect();
        panic!(
            "{name}: {lost} published calls never ran on a service, e.g. {:?}: {why:?}",
            not_run.iter().take(5).collect::<Vec<_>>()
        );
    }
    let twice = outcome
        .answered
        .iter()
        .filter(|id| recorded.get(*id).is_some_and(|n| *n > 1))
        .count();
    if every_call_answered {
        assert!(
            outcome.failed_published.is_empty() && outcome.failed_unpublished.is_empty(),
            "{name}: calls failed: {:?} {:?}",
            outcome.failed_published.iter().take(5).collect::<Vec<_>>(),
            outcome
                .failed_unpublished
                .iter()
                .take(5)
                .collect::<Vec<_>>()
        );
    }
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for (_, why) in outcome
        .failed_published
        .iter()
        .chain(&outcome.failed_unpublished)
    {
        let short: String = why.chars().take(80).collect();
        *reasons.entry(short).or_default() += 1;
    }
    format!(
        "{name}: {} calls, {} answered, {} failed ({reasons:?}), lost {lost}, {twice} ran twice, slowest {:.2?}",
        outcome.sent,
        outcome.answered.len(),
        outcome.failed_published.len() + outcome.failed_unpublished.len(),
        outcome.slowest,
    )
}

/// What both clients send, with their handles; ended with [`Load::finish`].
struct Load {
    rust: tokio::task::JoinHandle<Outcome>,
    python: Option<tokio::task::JoinHandle<Outcome>>,
    stop: tokio::sync::watch::Sender<bool>,
    stop_file: PathBuf,
    began: Instant,
    /// Stops the Python client if the test fails before `finish`.
    _python_stop: StopFile,
}

/// Writes the Python client's stop file when dropped: a failing test must not leave the
/// client running (the runtime would wait for it before the test could end).
struct StopFile(PathBuf);

impl Drop for StopFile {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, b"stop");
    }
}

impl Load {
    /// Starts both clients: the Rust one on `rust_nodes` (in that order), the Python one
    /// on `python_node`.
    async fn start(
        rust_nodes: &[usize],
        python_node: usize,
        prefix: &'static str,
        dir: &Path,
    ) -> Self {
        let python = match python() {
            Ok(python) => Some(python),
            Err(why) => {
                assert!(
                    !required("NAMEKO_REQUIRE_PYTHON"),
                    "no Python nameko and NAMEKO_REQUIRE_PYTHON=1: {why}"
                );
                eprintln!("the Python client is left out: {why}");
                None
            }
        };
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let stop_file = dir.join("stop");
        let (rust_prefix, python_prefix) = if prefix == "kill-node" {
            ("rs-node", "py-node")
        } else {
            ("rs-inst", "py-inst")
        };
        let rust = tokio::spawn(rust_load(
            RabbitCluster::uri(rust_nodes),
            rust_prefix,
            stopped,
        ));
        let python = python.map(|python| {
            tokio::spawn(python_load(
                python,
                RabbitCluster::uri(&[python_node]),
                python_prefix,
                stop_file.clone(),
            ))
        });
        Self {
            rust,
            python,
            stop,
            _python_stop: StopFile(stop_file.clone()),
            stop_file,
            began: Instant::now(),
        }
    }

    /// Stops sending, and waits until every call ended.
    async fn finish(self) -> Vec<Outcome> {
        self.stop.send_replace(true);
        std::fs::write(&self.stop_file, b"stop").expect("the stop file");
        let mut outcomes = vec![self.rust.await.expect("the Rust client")];
        if let Some(python) = self.python {
            outcomes.push(python.await.expect("the Python client"));
        }
        outcomes
    }
}

/// Waits until the service has consumed again after `since` (a new call recorded after
/// its reconnection); how long that took.
async fn until_consuming(
    instances: &Instances,
    i: usize,
    reconnections: usize,
    since: Instant,
) -> Duration {
    let deadline = since + Duration::from_secs(30);
    while instances.reconnections(i) <= reconnections {
        assert!(
            Instant::now() < deadline,
            "the service did not reconnect within 30 s:\n{}",
            instances.processes[i].stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lines = instances.record_lines();
    while instances.record_lines() <= lines {
        assert!(
            Instant::now() < deadline,
            "the service did not consume again within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    since.elapsed()
}

// ---------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes on the three-node RabbitMQ cluster; `cargo test -p nameko --test cluster_failover -- --ignored` (.ci/run does)"]
async fn killing_the_node_a_service_is_connected_to_loses_no_call() {
    let _serial = SERIAL.lock().await;
    let Some(cluster) = RabbitCluster::ensure().await else {
        return;
    };
    let duration = load_duration();
    let mut instances = Instances::new();
    // The service lists the nodes in order: it connects to node 1. The clients keep to
    // node 3 (their reply queues are classic, on the node they are connected to).
    let service = instances.start(&RabbitCluster::uri(&[1, 2, 3])).await;
    assert_eq!(instances.node_of(service), Some(1));
    let load = Load::start(&[3, 2], 3, "kill-node", &instances.dir).await;
    let began = load.began;

    // Half the load time before the first kill, half after the last recovery.
    tokio::time::sleep(duration / 2).await;
    let mut recoveries = Vec::new();
    let mut killed = Vec::new();
    for round in 0..2 {
        let node = instances
            .node_of(service)
            .expect("the service is connected");
        assert_ne!(node, 3, "the service moved to the clients' node");
        let reconnections = instances.reconnections(service);
        let lines = instances.record_lines();
        let (killed_at, closed_after) = cluster.kill(node).await;
        let recovery = until_consuming(&instances, service, reconnections, killed_at).await;
        let moved_to = instances.node_of(service).expect("reconnected");
        println!(
            "round {round}: killed node {node} (its port closed {closed_after:.2?} after kill -9) \
             {:.1?} into the load with {} calls recorded; the service was consuming again on \
             node {moved_to} {recovery:.2?} after the kill",
            killed_at - began,
            lines
        );
        assert_ne!(moved_to, node);
        recoveries.push(recovery);
        killed.push(node);
        if round == 0 {
            let start_took = cluster.start(node).await;
            println!("round {round}: node {node} back after {start_took:.2?}");
        }
    }
    tokio::time::sleep(duration / 2).await;
    let outcomes = load.finish().await;
    let load_took = began.elapsed();
    // Let the last redelivered requests run before counting.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (recorded, _) = instances.recorded();
    let mut figures = Vec::new();
    for outcome in &outcomes {
        figures.push(check(outcome, &recorded, false));
    }
    println!(
        "kill the service's node under load ({load_took:.1?} of load, {IN_FLIGHT} in flight \
         per client, quorum queues): nodes killed {killed:?}, consuming again after \
         {recoveries:.2?}; {}",
        figures.join("; ")
    );
    for recovery in &recoveries {
        assert!(
            *recovery < RECOVERY_BOUND,
            "the service consumed again only {recovery:?} after its node was killed"
        );
    }
    let answered: usize = outcomes.iter().map(|o| o.answered.len()).sum();
    assert!(answered > 0, "no call was answered at all");
    drop(instances);
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes on the three-node RabbitMQ cluster; `cargo test -p nameko --test cluster_failover -- --ignored` (.ci/run does)"]
async fn killing_one_of_three_instances_answers_every_call() {
    let _serial = SERIAL.lock().await;
    let Some(cluster) = RabbitCluster::ensure().await else {
        return;
    };
    let duration = load_duration();
    let mut instances = Instances::new();
    for nodes in [[1, 2, 3], [2, 3, 1], [3, 1, 2]] {
        instances.start(&RabbitCluster::uri(&nodes)).await;
    }
    let load = Load::start(&[3, 2, 1], 2, "kill-instance", &instances.dir).await;
    let began = load.began;
    tokio::time::sleep(duration / 2).await;
    let victim = instances.processes[0].id();
    let (before, _) = instances.recorded();
    instances.processes[0].signal("KILL");
    let killed_at = began.elapsed();
    tokio::time::sleep(duration / 2).await;
    let outcomes = load.finish().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (recorded, by_pid) = instances.recorded();
    let mut figures = Vec::new();
    for outcome in &outcomes {
        figures.push(check(outcome, &recorded, true));
    }
    let survivors: HashSet<u32> = instances.processes[1..]
        .iter()
        .map(ServiceProcess::id)
        .collect();
    let after_kill: usize = by_pid
        .iter()
        .filter(|(pid, _)| survivors.contains(pid))
        .map(|(_, n)| n)
        .sum();
    println!(
        "kill -9 one of three instances {killed_at:.1?} into {duration:?} of load ({} calls \
         recorded by then; per process {by_pid:?}, killed {victim}, {after_kill} run by the \
         survivors); {}",
        before.len(),
        figures.join("; ")
    );
    assert!(
        by_pid.get(&victim).copied().unwrap_or(0) > 0,
        "the killed instance had taken no work"
    );
    drop(instances);
    drop(cluster);
}

/// Calls in flight when the caller's node is killed.
const CALLER_IN_FLIGHT: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes on the three-node RabbitMQ cluster; `cargo test -p nameko --test cluster_failover -- --ignored` (.ci/run does)"]
async fn killing_the_node_a_caller_is_connected_to_moves_it_to_a_fresh_reply_queue() {
    let _serial = SERIAL.lock().await;
    let Some(cluster) = RabbitCluster::ensure().await else {
        return;
    };
    let mut instances = Instances::new();
    // The service on node 1; the caller on node 3, then 2: its classic reply queue lives
    // on node 3, and is lost with it.
    let service = instances.start(&RabbitCluster::uri(&[1, 2, 3])).await;
    assert_eq!(instances.node_of(service), Some(1));
    let config = Config::new()
        .with("AMQP_URI", RabbitCluster::uri(&[3, 2]).as_str())
        .with("RPC_TIMEOUT", CALL_TIMEOUT.as_secs());
    let transport = nameko::connect(&config).await.expect("the caller connects");
    let proxy = ClusterRpcProxy::start(Arc::clone(&transport), &config)
        .await
        .expect("the caller's proxy");
    let outage_service = proxy.service("outage_service");
    let lost_queue = proxy.reply_queue();
    let queues = cluster
        .ctl(1, &["list_queues", "name", "type", "--no-table-headers"])
        .await
        .expect("rabbitmqctl list_queues");
    assert!(
        queues
            .lines()
            .any(|l| l.starts_with(&lost_queue) && l.contains("classic")),
        "the reply queue is classic: {queues}"
    );
    for n in 0..20 {
        let id = format!("caller-before-{n}");
        let answer: String = outage_service
            .call("work", (id.clone(), 0_u64))
            .await
            .expect("calls before the kill are answered");
        assert_eq!(answer, id);
    }

    // Calls in flight when the node dies: their replies are due on the lost queue.
    let mut in_flight = JoinSet::new();
    for n in 0..CALLER_IN_FLIGHT {
        let id = format!("caller-in-flight-{n}");
        let reply = outage_service
            .call_async::<String>("work", (id, 1_000_u64))
            .await
            .expect("an in-flight request is published");
        in_flight.spawn(async move {
            let outcome =
                tokio::time::timeout(CALL_TIMEOUT + Duration::from_secs(10), reply.result()).await;
            (outcome, Instant::now())
        });
    }
    let (killed_at, closed_after) = cluster.kill(3).await;

    // The next calls, one after another, until one is answered.
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    let mut attempts = 0_usize;
    let recovery = loop {
        attempts += 1;
        let id = format!("caller-after-{attempts}");
        let called = tokio::time::timeout(
            CALL_TIMEOUT + Duration::from_secs(10),
            outage_service.call::<String>("work", (id.clone(), 0_u64)),
        )
        .await
        .expect("a call after the kill hung past its timeout");
        match called {
            Ok(answer) => {
                assert_eq!(answer, id);
                break killed_at.elapsed();
            }
            Err(error) => {
                let why: String = error.to_string().chars().take(60).collect();
                *failures.entry(why).or_default() += 1;
            }
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(30),
            "no call answered within 30 s of the kill: {failures:?}"
        );
    };

    // Every call in flight ended: answered before the kill, or failed at once with
    // RepliesLost; none waited for its timeout.
    let (mut answered, mut lost, mut latest) = (0, 0, Duration::ZERO);
    while let Some(ended) = in_flight.join_next().await {
        let (outcome, at) = ended.expect("an in-flight call's task");
        latest = latest.max(at.saturating_duration_since(killed_at));
        match outcome.expect("an in-flight call hung past its timeout") {
            Ok(_) => answered += 1,
            Err(RpcError::RepliesLost(_)) => lost += 1,
            Err(other) => panic!("an in-flight call failed otherwise: {other:?}"),
        }
    }
    assert_eq!(answered + lost, CALLER_IN_FLIGHT);

    // Later calls all work, through a fresh classic reply queue on a surviving node.
    let after = Instant::now();
    for n in 0..50 {
        let id = format!("caller-later-{n}");
        let answer: String = outage_service
            .call("work", (id.clone(), 0_u64))
            .await
            .expect("later calls are answered");
        assert_eq!(answer, id);
    }
    let later_took = after.elapsed();
    let fresh_queue = proxy.reply_queue();
    assert_ne!(
        fresh_queue, lost_queue,
        "the caller moved to a fresh reply queue"
    );
    let queues = cluster
        .ctl(1, &["list_queues", "name", "type", "--no-table-headers"])
        .await
        .expect("rabbitmqctl list_queues");
    assert!(
        queues
            .lines()
            .any(|l| l.starts_with(&fresh_queue) && l.contains("classic")),
        "the fresh reply queue is classic: {queues}"
    );
    println!(
        "kill the caller's node (its port closed {closed_after:.2?} after kill -9): \
         {CALLER_IN_FLIGHT} calls in flight: {answered} answered, {lost} failed with \
         RepliesLost, the last {latest:.2?} after the kill; the first call answered \
         {recovery:.2?} after the kill, at attempt {attempts} (failed before it: \
         {failures:?}); then 50 calls answered in {later_took:.2?} on {fresh_queue}"
    );
    assert!(
        latest < RECOVERY_BOUND,
        "the calls in flight ended only {latest:?} after the kill"
    );
    assert!(
        recovery < RECOVERY_BOUND,
        "the caller was answered again only {recovery:?} after its node was killed"
    );
    proxy.stop().await;
    let _ = transport.close().await;
    let start_took = cluster.start(3).await;
    println!("node 3 back after {start_took:.2?}");
    drop(instances);
    drop(cluster);
}
