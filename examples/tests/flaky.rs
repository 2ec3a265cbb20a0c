//! `flaky_service`: a job failing `fail_times` times is handled at attempt
//! `fail_times + 1` after the 1 s, 2 s, 4 s delays of its schedule; one that keeps
//! failing is dead-lettered after 4 attempts, and handled once replayed.

use std::time::Duration;

use nameko::prelude::*;
use nameko::retry::dead_letters;
use nameko::testing::{TestCluster, cluster_tests};
use nameko_examples::FlakyService;
use nameko_examples::flaky::FLAKY_DEAD_LETTER_QUEUE;

async fn handled(cluster: &TestCluster) -> Vec<Value> {
    cluster
        .proxy()
        .await
        .service("flaky_service")
        .call("handled", ())
        .await
        .unwrap()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn retries_follow_the_schedule_on_a_paused_clock() {
    let mut cluster = TestCluster::memory();
    cluster.start::<FlakyService>().await;
    let start = tokio::time::Instant::now();
    cluster
        .dispatch("jobs", "job_submitted", json!({"id": "a", "fail_times": 2}))
        .await;
    // Attempts at 0 s, 1 s and 3 s: not handled before 3 s, handled at 3 s.
    tokio::time::sleep(Duration::from_millis(2999)).await;
    assert_eq!(handled(&cluster).await, Vec::<Value>::new());
    tokio::time::sleep(Duration::from_millis(2)).await;
    assert_eq!(handled(&cluster).await, [json!({"id": "a", "attempts": 3})]);
    assert!(start.elapsed() < Duration::from_millis(3100));
    cluster.shutdown().await;
}

cluster_tests! {
    async fn a_job_that_keeps_failing_is_dead_lettered_and_replayed(cluster: TestCluster) {
        let mut cluster = cluster;
        cluster.start::<FlakyService>().await;
        cluster
            .dispatch("jobs", "job_submitted", json!({"id": "ok", "fail_times": 0}))
            .await;
        cluster
            .dispatch("jobs", "job_submitted", json!({"id": "doomed", "fail_times": 9}))
            .await;
        let transport = cluster.connect().await;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let letters = loop {
            let letters = dead_letters::list(transport.as_ref(), FLAKY_DEAD_LETTER_QUEUE, 10)
                .await
                .unwrap();
            if !letters.is_empty() || std::time::Instant::now() > deadline {
                break letters;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].exc_type.as_deref(), Some("ValueError"));
        assert_eq!(letters[0].value.as_deref(), Some("job doomed fails on attempt 4 of 10"));
        assert_eq!(letters[0].attempts, Some(4));
        assert_eq!(handled(&cluster).await, [json!({"id": "ok", "attempts": 1})]);
        // Replayed, it starts afresh: attempt 1 fails again, and so on; the replay is
        // handled like a new delivery.
        assert_eq!(
            dead_letters::replay(transport.as_ref(), FLAKY_DEAD_LETTER_QUEUE, 10).await.unwrap(),
            1
        );
        assert!(dead_letters::list(transport.as_ref(), FLAKY_DEAD_LETTER_QUEUE, 10)
            .await
            .unwrap()
            .is_empty());
        cluster.shutdown().await;
    }
}
