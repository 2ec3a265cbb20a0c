//! Delayed retries side by side: a Python nameko service retrying with
//! nameko-amqp-retry 0.7.1 and a Rust service with `retry = Backoff {..}` handle the same
//! events with the same failing handler, on the same `backoff` exchange and delay
//! queues: the same attempts, after the same delays (1 s, 2 s, 4 s).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nameko::prelude::*;
use nameko_interop::{Recorder, run};

#[derive(Debug, NamekoError)]
#[nameko(
    exc_type = "ValueError",
    exc_path = "builtins.ValueError",
    display = "{0}"
)]
struct ValueError(String);

#[derive(Dependencies)]
struct RsFlaky {
    records: Recorder,
    worker: std::sync::Arc<WorkerContext>,
}

#[service(name = "rs_flaky")]
impl RsFlaky {
    #[event_handler("jobs", "job_submitted", retry = Backoff { limit: 3, schedule: [1, 2, 4] })]
    async fn handle_job(&self, job: Value) -> Result<(), ValueError> {
        let attempt = self.worker.attempt();
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.records
            .record(json!({"id": job["id"], "attempt": attempt, "at": at}));
        if u64::from(attempt) <= job["fail_times"].as_u64().unwrap_or(0) {
            return Err(ValueError(format!(
                "job {} fails on attempt {attempt}",
                job["id"]
            )));
        }
        Ok(())
    }
}

/// (attempt, seconds since the first attempt) of job `id`'s calls.
fn timeline(records: &[Value], id: &str) -> Vec<(u64, f64)> {
    let mine: Vec<&Value> = records.iter().filter(|r| r["id"] == id).collect();
    let first = mine
        .first()
        .map_or(0.0, |r| r["at"].as_f64().unwrap_or(0.0));
    mine.iter()
        .map(|r| {
            (
                r["attempt"].as_u64().unwrap_or(0),
                r["at"].as_f64().unwrap_or(0.0) - first,
            )
        })
        .collect()
}

fn delays(timeline: &[(u64, f64)]) -> Vec<f64> {
    timeline.windows(2).map(|w| w[1].1 - w[0].1).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_nameko_amqp_retry_and_rust_retry_alike() {
    run(async |mut env| {
        env.start_python(&["retrying:Flaky"]).await;
        let recorder = Recorder::new();
        env.start_rust_recording::<RsFlaky>(&recorder).await;
        env.cluster()
            .dispatch(
                "jobs",
                "job_submitted",
                json!({"id": "recovers", "fail_times": 3}),
            )
            .await;
        env.cluster()
            .dispatch(
                "jobs",
                "job_submitted",
                json!({"id": "doomed", "fail_times": 99}),
            )
            .await;
        // 4 attempts each of two jobs; then enough time for a fifth that must not come.
        let rust = recorder.wait_for(8, Duration::from_secs(20)).await;
        let python = env.python_records("py_flaky", 8).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let rust = {
            let later = recorder.records();
            assert_eq!(
                later.len(),
                rust.len(),
                "no fifth attempt in Rust: {later:#?}"
            );
            later
        };
        let python_later = env.python_records("py_flaky", 9).await;
        assert_eq!(
            python_later.len(),
            python.len(),
            "no fifth attempt in Python"
        );
        for id in ["recovers", "doomed"] {
            let (py, rs) = (timeline(&python, id), timeline(&rust, id));
            let attempts = |t: &[(u64, f64)]| t.iter().map(|(a, _)| *a).collect::<Vec<_>>();
            assert_eq!(attempts(&py), [1, 2, 3, 4], "Python, {id}: {py:?}");
            assert_eq!(attempts(&rs), [1, 2, 3, 4], "Rust, {id}: {rs:?}");
            for (language, delays) in [("Python", delays(&py)), ("Rust", delays(&rs))] {
                for (got, want) in delays.iter().zip([1.0, 2.0, 4.0]) {
                    assert!(
                        *got >= want - 0.01 && *got < want + 0.75,
                        "{language}, {id}: waited {delays:?} instead of 1, 2, 4 s"
                    );
                }
            }
            for (p, r) in delays(&py).iter().zip(delays(&rs)) {
                assert!((p - r).abs() < 0.5, "{id}: Python {py:?}, Rust {rs:?}");
            }
        }
        env.shutdown().await;
    })
    .await;
}
