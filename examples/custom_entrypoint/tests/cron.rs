//! The cron entrypoint on the in-memory broker, under tokio's paused clock: schedules
//! fire on time, a run still going is not started twice, the process-wide scheduler
//! serves every service and stops with the last, bad definitions are refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Timelike};
use nameko::dependency::ValueProvider;
use nameko::prelude::*;
use nameko::testing::TestCluster;
use nameko_cron::{ReportLog, Reports, Scheduler, cron};

async fn start_reports(cluster: &mut TestCluster, log: &ReportLog) -> ServiceContainer<Reports> {
    let container = cluster.container::<Reports>().await;
    container
        .replace_dependency("log", ValueProvider::new(log.clone()))
        .unwrap();
    container.start().await.unwrap();
    container
}

#[tokio::test(start_paused = true)]
async fn jobs_fire_on_their_schedule() {
    let mut cluster = TestCluster::memory();
    let log = ReportLog::default();
    let reports = start_reports(&mut cluster, &log).await;
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    let runs = log.runs();
    let heartbeats: Vec<DateTime<chrono::FixedOffset>> = runs
        .iter()
        .filter(|r| r.job == "heartbeat")
        .map(|r| DateTime::parse_from_rfc3339(r.scheduled.as_deref().unwrap()).unwrap())
        .collect();
    assert!(
        (5..=6).contains(&heartbeats.len()),
        "about one heartbeat a second in 5.5 s: {runs:?}"
    );
    for pair in heartbeats.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            chrono::Duration::seconds(1),
            "{heartbeats:?}"
        );
        assert_eq!(
            pair[1].nanosecond(),
            0,
            "runs are scheduled on whole seconds"
        );
    }
    reports.stop().await.unwrap();
    cluster.shutdown().await;
}

/// A job that takes 2.5 s on an every-second schedule.
#[derive(Dependencies)]
struct Slow {
    #[dependency(ValueProvider::new(Arc::new(AtomicUsize::new(0))))]
    running: Arc<AtomicUsize>,
}

#[service(name = "slow")]
impl Slow {
    #[cron("* * * * * *")]
    async fn crunch(&self) {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        assert_eq!(now, 1, "two runs of one job at once");
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn a_run_still_going_is_not_started_twice_and_a_stop_waits_for_it() {
    let mut cluster = TestCluster::memory();
    let slow = cluster.container::<Slow>().await;
    let running = Arc::new(AtomicUsize::new(0));
    slow.replace_dependency("running", ValueProvider::new(running.clone()))
        .unwrap();
    let mut finished = slow.subscribe_workers();
    slow.start().await.unwrap();
    let mut runs = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Ok(Ok(event)) = tokio::time::timeout_at(deadline, finished.recv()).await {
        assert_eq!(event.result, Ok(Value::Null), "no run overlapped another");
        runs += 1;
    }
    // Runs start at 1 s, 4 s, 7 s: the seconds in between are skipped while one runs.
    assert_eq!(runs, 3);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(running.load(Ordering::SeqCst), 1, "a run is going");
    slow.stop().await.unwrap();
    assert_eq!(running.load(Ordering::SeqCst), 0, "the stop waited for it");
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn one_scheduler_serves_every_service_and_stops_with_the_last() {
    let mut cluster = TestCluster::memory();
    let log = ReportLog::default();
    let reports = start_reports(&mut cluster, &log).await;
    let slow = cluster.container::<Slow>().await;
    slow.replace_dependency("running", ValueProvider::new(Arc::new(AtomicUsize::new(0))))
        .unwrap();
    slow.start().await.unwrap();
    let scheduler = reports.context().process_shared("", || -> Scheduler {
        unreachable!("the scheduler exists already")
    });
    assert_eq!(scheduler.jobs(), 3, "two jobs of `reports`, one of `slow`");
    slow.stop().await.unwrap();
    assert_eq!(scheduler.jobs(), 2);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = log.runs().len();
    assert!(before >= 1, "`reports` still runs after `slow` stopped");
    reports.stop().await.unwrap();
    assert_eq!(scheduler.jobs(), 0);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        log.runs().len(),
        before,
        "nothing runs once every container stopped"
    );
    cluster.shutdown().await;
}

#[derive(Dependencies)]
struct BadExpression;

#[service(name = "bad_expression")]
impl BadExpression {
    #[cron("every day at noon")]
    async fn noon(&self) {}
}

#[derive(Dependencies)]
struct TooManyArguments;

#[service(name = "too_many_arguments")]
impl TooManyArguments {
    #[cron("0 * * * * *")]
    async fn minute(&self, _scheduled: String, _extra: u32) {}
}

#[test]
fn bad_definitions_are_refused_when_the_container_is_built() {
    let transport = Arc::new(nameko::memory::MemoryBroker::new().connect());
    let error = ServiceContainer::<BadExpression>::new(transport.clone(), Config::new())
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("cron entrypoint `noon`: invalid cron expression `every day at noon`"),
        "{error}"
    );
    let error = ServiceContainer::<TooManyArguments>::new(transport, Config::new())
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "cron entrypoint `minute`: a `#[cron]` method takes no argument, or one (the time it was scheduled for); `minute` takes 2"
    );
}

#[test]
fn the_asyncapi_document_lists_cron_jobs_without_channels() {
    let document = nameko::asyncapi(nameko::services![Reports])
        .document()
        .unwrap();
    let entrypoints = document["x-nameko-entrypoints"].as_array().unwrap();
    let heartbeat = entrypoints
        .iter()
        .find(|e| e["method"] == "heartbeat")
        .unwrap();
    assert_eq!(heartbeat["kind"], "cron");
    assert_eq!(heartbeat["described"], "not messaging");
    assert_eq!(heartbeat["summary"], "cron `* * * * * *`");
    let operations = document["operations"].as_object().unwrap();
    assert_eq!(
        operations.keys().collect::<Vec<_>>(),
        ["reports.runs"],
        "only the RPC method takes messages"
    );
}
