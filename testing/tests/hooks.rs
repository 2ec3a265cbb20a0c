//! `entrypoint_hook` and `entrypoint_waiter`: results, errors, context, timeouts, and a
//! container that dies while a test waits.

use std::time::Duration;

use nameko::prelude::*;
use nameko_testing::{HookError, TestCluster, WaiterError, entrypoint_hook, entrypoint_waiter};

#[derive(Dependencies)]
struct Worker {
    context: ContextData,
}

#[service(name = "worker")]
impl Worker {
    #[rpc]
    async fn double(&self, x: i64) -> i64 {
        x * 2
    }

    #[rpc]
    async fn whoami(&self) -> Value {
        self.context.user_id().cloned().unwrap_or(Value::Null)
    }

    #[rpc]
    async fn fail(&self) -> Result<(), ServiceError> {
        Err(ServiceError::new("ValueError", "builtins.ValueError", "no"))
    }

    #[rpc]
    async fn slow(&self, seconds: u64) -> u64 {
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        seconds
    }

    #[event_handler("src", "ping")]
    async fn on_ping(&self, payload: Value) -> Result<Value, ServiceError> {
        if payload["fail"] == true {
            return Err(ServiceError::msg("bad ping"));
        }
        Ok(payload)
    }
}

#[tokio::test]
async fn a_hook_runs_the_real_worker_path() {
    let mut cluster = TestCluster::memory();
    let container = cluster.start::<Worker>().await;
    let doubled: i64 = entrypoint_hook(&container, "double")
        .call_as((21,))
        .await
        .unwrap();
    assert_eq!(doubled, 42);
    let user = entrypoint_hook(&container, "whoami")
        .context(ContextData::new().with("user_id", 9))
        .call(())
        .await
        .unwrap();
    assert_eq!(user, json!(9));
    match entrypoint_hook(&container, "fail")
        .call(())
        .await
        .unwrap_err()
    {
        HookError::Failed(remote) => assert_eq!(
            (remote.exc_type.as_str(), remote.value.as_str()),
            ("ValueError", "no")
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        entrypoint_hook(&container, "double").call(("x",)).await,
        Err(HookError::Bind(_))
    ));
    let err = entrypoint_hook(&container, "triple")
        .call(())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the service has no entrypoint `triple`; its entrypoints are: double, whoami, fail, slow, on_ping"
    );
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_hook_times_out() {
    let mut cluster = TestCluster::memory();
    let container = cluster.start::<Worker>().await;
    let started = tokio::time::Instant::now();
    let err = entrypoint_hook(&container, "slow")
        .timeout(Duration::from_secs(2))
        .call((60,))
        .await
        .unwrap_err();
    assert!(matches!(err, HookError::Timeout { .. }), "{err:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    container.kill().await;
}

#[tokio::test]
async fn a_hook_fails_when_the_container_dies_instead_of_hanging() {
    let mut cluster = TestCluster::memory();
    let container = cluster.start::<Worker>().await;
    let killer = container.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        killer.kill().await;
    });
    let err = entrypoint_hook(&container, "slow")
        .call((60,))
        .await
        .unwrap_err();
    assert!(matches!(err, HookError::ContainerDied(_)), "{err:?}");
}

#[tokio::test]
async fn a_waiter_resolves_after_the_matching_worker_was_torn_down() {
    let mut cluster = TestCluster::memory();
    let container = cluster.start::<Worker>().await;
    let waiter =
        entrypoint_waiter(&container, "on_ping").matching(|w| w.context.args().args[0]["n"] == 2);
    for n in 1..=3 {
        cluster.dispatch("src", "ping", json!({"n": n})).await;
    }
    let worker = waiter.wait().await.unwrap();
    assert_eq!(worker.result.unwrap(), json!({"n": 2}));
    let failing = entrypoint_waiter(&container, "on_ping");
    cluster.dispatch("src", "ping", json!({"fail": true})).await;
    assert_eq!(
        failing.wait().await.unwrap().result.unwrap_err().value,
        "bad ping"
    );
    cluster.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_waiter_timeout_reports_what_did_fire() {
    let mut cluster = TestCluster::memory();
    let container = cluster.start::<Worker>().await;
    let waiter = entrypoint_waiter(&container, "on_ping")
        .matching(|w| w.context.args().args[0]["n"] == 99)
        .timeout(Duration::from_secs(5));
    cluster.dispatch("src", "ping", json!({"n": 1})).await;
    entrypoint_hook(&container, "double")
        .call((4,))
        .await
        .unwrap();
    let err = waiter.wait().await.unwrap_err();
    let WaiterError::Timeout { fired, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(fired.contains(r#"on_ping({"n":1}) -> {"n":1}"#), "{fired}");
    assert!(fired.contains("double(4) -> 8"), "{fired}");
    assert!(
        err.to_string()
            .starts_with("no worker of `on_ping` matching the predicate finished within 5s"),
        "{err}"
    );
    cluster.shutdown().await;
}
