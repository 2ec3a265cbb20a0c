//! Delayed retries and dead letters: an event handler with `retry = Backoff {..}` is
//! retried after the delays of its schedule, held by the broker (paused clock on the
//! in-memory broker, real time on RabbitMQ), without holding a worker slot; what keeps
//! failing lands in `<queue>.dead` with its error and attempt count, and a replay
//! brings it back.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use nameko::prelude::*;
use nameko::retry::dead_letters;
use nameko::testing::{TestCluster, cluster_tests};
use nameko::transport::FieldValue;
use tokio::time::Instant;

#[derive(Debug, NamekoError)]
#[nameko(
    exc_type = "ValueError",
    exc_path = "builtins.ValueError",
    display = "{0}"
)]
struct ValueError(String);

/// (job id, attempt, when) of every call.
static CALLS: Mutex<Vec<(String, u32, Instant)>> = Mutex::new(Vec::new());
/// Jobs with `"until_fixed": true` fail until their id is in here.
static FIXED: Mutex<Option<HashSet<String>>> = Mutex::new(None);

fn is_fixed(id: &str) -> bool {
    FIXED
        .lock()
        .unwrap()
        .as_ref()
        .is_some_and(|fixed| fixed.contains(id))
}

fn fix(id: &str) {
    FIXED
        .lock()
        .unwrap()
        .get_or_insert_with(HashSet::new)
        .insert(id.to_owned());
}

fn calls(id: &str) -> Vec<(u32, Instant)> {
    CALLS
        .lock()
        .unwrap()
        .iter()
        .filter(|(job, _, _)| job == id)
        .map(|(_, attempt, at)| (*attempt, *at))
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

fn handle(worker: &WorkerContext, job: &Value) -> Result<(), ValueError> {
    let attempt = worker.attempt();
    let id = job["id"].as_str().unwrap_or_default().to_owned();
    CALLS
        .lock()
        .unwrap()
        .push((id.clone(), attempt, Instant::now()));
    let fail_times = job["fail_times"].as_u64().unwrap_or(0);
    let until_fixed = job["until_fixed"].as_bool() == Some(true) && !is_fixed(&id);
    if u64::from(attempt) <= fail_times || until_fixed {
        return Err(ValueError(format!("job {id} failed on attempt {attempt}")));
    }
    Ok(())
}

#[derive(Dependencies)]
struct Retrying {
    worker: std::sync::Arc<WorkerContext>,
}

#[service(name = "retrying")]
impl Retrying {
    #[event_handler("jobs", "job_submitted", retry = Backoff { limit: 3, schedule: [1, 2, 4] })]
    async fn handle_job(&self, job: Value) -> Result<(), ValueError> {
        handle(&self.worker, &job)
    }
}

#[derive(Dependencies)]
struct Quick {
    worker: std::sync::Arc<WorkerContext>,
}

#[service(name = "quick")]
impl Quick {
    #[event_handler("jobs", "quick_job", retry = Backoff { limit: 2, schedule: [0.05] })]
    async fn handle_job(&self, job: Value) -> Result<(), ValueError> {
        handle(&self.worker, &job)
    }
}

const QUEUE: &str = "evt-jobs-job_submitted--retrying.handle_job";
const QUICK_QUEUE: &str = "evt-jobs-quick_job--quick.handle_job";

/// The offsets of each call from the first.
fn offsets(calls: &[(u32, Instant)]) -> Vec<Duration> {
    calls.iter().map(|(_, at)| *at - calls[0].1).collect()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn memory_retries_after_the_schedule_without_holding_a_worker() {
    let mut cluster = TestCluster::memory().with_config("MAX_WORKERS", 1);
    cluster.start::<Retrying>().await;
    let run = run_id();
    let (flaky, steady) = (format!("{run}-flaky"), format!("{run}-steady"));
    let start = Instant::now();
    cluster
        .dispatch(
            "jobs",
            "job_submitted",
            json!({"id": flaky, "fail_times": 3}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let broker = cluster.broker().expect("memory broker");
    let waiting = broker.queue("backoff--1000ms").expect("the delay queue");
    assert_eq!((waiting.ready, waiting.unacked), (1, 0), "{waiting:?}");
    let own = broker.queue(QUEUE).expect("the handler's queue");
    assert_eq!((own.ready, own.unacked), (0, 0), "{own:?}");
    // The one worker slot is free while the failed job waits in the broker.
    cluster
        .dispatch(
            "jobs",
            "job_submitted",
            json!({"id": steady, "fail_times": 0}),
        )
        .await;
    tokio::time::sleep(Duration::from_secs(10)).await;

    let flaky_calls = calls(&flaky);
    let attempts: Vec<u32> = flaky_calls.iter().map(|(a, _)| *a).collect();
    assert_eq!(attempts, [1, 2, 3, 4]);
    assert_eq!(
        offsets(&flaky_calls),
        [0, 1, 3, 7].map(Duration::from_secs),
        "retried after 1 s, 2 s and 4 s of the paused clock"
    );
    let steady_calls = calls(&steady);
    assert_eq!(steady_calls.len(), 1);
    assert_eq!(steady_calls[0].1 - start, Duration::from_millis(500));
    let dead = broker
        .queue(&format!("{QUEUE}.dead"))
        .expect("the dead-letter queue");
    assert_eq!(dead.ready, 0, "nothing dead-lettered: {dead:?}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_retries_after_the_schedule() {
    let Some(mut cluster) = TestCluster::rabbitmq().await else {
        return;
    };
    cluster.start::<Retrying>().await;
    let id = format!("{}-flaky", run_id());
    cluster
        .dispatch("jobs", "job_submitted", json!({"id": id, "fail_times": 3}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while calls(&id).len() < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = calls(&id);
    assert_eq!(
        got.iter().map(|(a, _)| *a).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    let offsets = offsets(&got);
    for (i, delay) in [1, 2, 4].into_iter().enumerate() {
        let waited = offsets[i + 1] - offsets[i];
        let delay = Duration::from_secs(delay);
        assert!(
            waited >= delay && waited < delay + Duration::from_millis(750),
            "retry {} after {waited:?} instead of {delay:?}",
            i + 1
        );
    }
    cluster.shutdown().await;
}

fn text(headers: &nameko::transport::FieldTable, key: &str) -> Option<String> {
    headers
        .get(key)
        .and_then(FieldValue::as_str)
        .map(str::to_owned)
}

cluster_tests! {
    async fn always_failing_is_dead_lettered_then_replayed(cluster: TestCluster) {
        let mut cluster = cluster;
        cluster.start::<Quick>().await;
        let id = format!("{}-doomed", run_id());
        cluster
            .dispatch("jobs", "quick_job", json!({"id": id, "until_fixed": true}))
            .await;
        let transport = cluster.connect().await;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let letters = loop {
            let letters = dead_letters::list(transport.as_ref(), QUICK_QUEUE, 100)
                .await
                .expect("listing");
            let mine: Vec<_> = letters
                .into_iter()
                .filter(|l| String::from_utf8_lossy(&l.body).contains(&id))
                .collect();
            if !mine.is_empty() || std::time::Instant::now() > deadline {
                break mine;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(letters.len(), 1, "dead-lettered once");
        let letter = &letters[0];
        assert_eq!(letter.exc_type.as_deref(), Some("ValueError"));
        assert_eq!(letter.value.as_deref(), Some(format!("job {id} failed on attempt 3").as_str()));
        assert_eq!(letter.attempts, Some(3));
        assert_eq!(letter.original_queue.as_deref(), Some(QUICK_QUEUE));
        assert_eq!(text(&letter.headers, "exc_path").as_deref(), Some("builtins.ValueError"));
        assert_eq!(calls(&id).len(), 3, "limit 2: three attempts");

        fix(&id);
        let replayed = dead_letters::replay(transport.as_ref(), QUICK_QUEUE, 100)
            .await
            .expect("replaying");
        assert!(replayed >= 1);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while calls(&id).len() < 4 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let got = calls(&id);
        assert_eq!(got.len(), 4, "handled once after the replay");
        assert_eq!(got[3].0, 1, "a replayed message starts its attempts afresh");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(calls(&id).len(), 4);
        let left = dead_letters::list(transport.as_ref(), QUICK_QUEUE, 100).await.expect("listing");
        assert!(left.iter().all(|l| !String::from_utf8_lossy(&l.body).contains(&id)));
        assert_eq!(dead_letters::purge(transport.as_ref(), QUICK_QUEUE, 100).await.expect("purge"), left.len());
        cluster.shutdown().await;
    }
}

#[derive(Dependencies)]
struct Answering {
    worker: std::sync::Arc<WorkerContext>,
}

#[service(name = "answering")]
impl Answering {
    #[rpc(expected_exceptions = [ValueError], retry = Backoff { limit: 2, schedule: [1, 2] })]
    async fn work(&self, job: Value) -> Result<u32, ValueError> {
        handle(&self.worker, &job)?;
        Ok(self.worker.attempt())
    }

    #[rpc]
    async fn plain(&self) -> u32 {
        self.worker.attempt()
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn rpc_retries_answer_once_with_the_first_success_or_the_last_error() {
    let mut cluster = TestCluster::memory().with_config("RPC_TIMEOUT", 60);
    cluster.start::<Answering>().await;
    let proxy = cluster.proxy().await;
    let service = proxy.service("answering");
    let run = run_id();

    let start = Instant::now();
    let recovers = format!("{run}-recovers");
    let attempt: u32 = service
        .call("work", (json!({"id": recovers, "fail_times": 2}),))
        .await
        .unwrap();
    assert_eq!(attempt, 3, "answered by the third attempt");
    assert_eq!(start.elapsed(), Duration::from_secs(3), "after 1 s and 2 s");

    let start = Instant::now();
    let doomed = format!("{run}-doomed");
    let error = service
        .call::<u32>("work", (json!({"id": doomed, "fail_times": 9}),))
        .await
        .unwrap_err();
    let remote = error.remote().expect("a remote error");
    assert_eq!(remote.exc_type, "ValueError");
    assert_eq!(remote.value, format!("job {doomed} failed on attempt 3"));
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(
        calls(&doomed).len(),
        3,
        "limit 2: three attempts, one answer"
    );

    assert_eq!(service.call::<u32>("plain", ()).await.unwrap(), 1);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(calls(&recovers).len(), 3, "no attempt after the answer");
    cluster.shutdown().await;
}
