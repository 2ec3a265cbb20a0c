//! Python and Rust instances of one service consuming the same queues: the RPC queue
//! `rpc-<name>`, a service-pool event queue and a singleton event queue. RabbitMQ refuses
//! a redeclaration that differs in any flag, so each side must declare exactly what the
//! other does; then both compete for the messages.

use std::time::Duration;

use nameko::prelude::*;
use nameko::transport::QueueOptions;
use nameko_interop::{Interop, Recorder, run};

#[derive(Dependencies)]
struct Shared;

#[service(name = "shared")]
impl Shared {
    #[rpc]
    async fn whoami(&self) -> &'static str {
        "rust"
    }

    #[rpc]
    async fn work(&self, i: u64, seconds: f64) -> (&'static str, u64) {
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        ("rust", i)
    }
}

/// The Rust instance of `pool_shared` (`services.PoolShared` is the Python one).
#[derive(Dependencies)]
struct PoolShared {
    records: Recorder,
}

#[service(name = "pool_shared")]
impl PoolShared {
    #[event_handler("jobs", "job")]
    async fn handle(&self, payload: Value) {
        self.records.record(payload);
    }

    #[event_handler("jobs", "hint", reliable_delivery = false)]
    async fn handle_hint(&self, payload: Value) {
        self.records.record(payload);
    }
}

/// Shares the singleton queue `evt-jobs-job_once` with Python's `py_single`.
#[derive(Dependencies)]
struct Single {
    records: Recorder,
}

#[service(name = "rs_single")]
impl Single {
    #[event_handler("jobs", "job_once", handler_type = singleton)]
    async fn handle(&self, payload: Value) {
        self.records.record(payload);
    }
}

const CALLS: usize = 40;
const EVENTS: usize = 20;
const WAIT: Duration = Duration::from_secs(10);

async fn consumers(env: &Interop, queue: &str) -> u32 {
    let transport = env.cluster().connect().await;
    let declared = transport
        .declare_queue(queue, QueueOptions::passive())
        .await
        .unwrap_or_else(|e| panic!("{queue}: {e}"));
    declared.consumer_count
}

/// Calls `shared.whoami` from Python and from Rust, many calls in flight at once; both
/// instances must answer some of each.
async fn assert_both_serve(env: &Interop) {
    assert_eq!(consumers(env, "rpc-shared").await, 2);
    let calls: Vec<Value> = (0..CALLS).map(|_| json!([[], {}])).collect();
    let from_python = env
        .python(
            "call_async",
            json!({"service": "shared", "method": "whoami", "calls": calls}),
        )
        .await
        .unwrap();
    let from_python: Vec<String> = serde_json::from_value(from_python["results"].clone()).unwrap();

    let proxy = env.cluster().proxy().await;
    let mut pending = Vec::new();
    for _ in 0..CALLS {
        pending.push(
            proxy
                .service("shared")
                .call_async::<String>("whoami", ())
                .await
                .unwrap(),
        );
    }
    let mut from_rust = Vec::new();
    for reply in pending {
        from_rust.push(reply.result().await.unwrap());
    }
    for (caller, answers) in [("Python", from_python), ("Rust", from_rust)] {
        let python = answers.iter().filter(|a| *a == "python").count();
        let rust = answers.iter().filter(|a| *a == "rust").count();
        assert_eq!(python + rust, CALLS, "{caller}: {answers:?}");
        assert!(
            python > 0 && rust > 0,
            "{caller}'s calls reached both instances ({python} Python, {rust} Rust)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_instance_joins_the_rpc_queue_of_a_python_service() {
    run(async |mut env| {
        env.start_python(&["services:Shared"]).await;
        env.start_rust::<Shared>().await;
        assert_both_serve(&env).await;
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_instance_joins_the_rpc_queue_of_a_rust_service() {
    run(async |mut env| {
        env.start_rust::<Shared>().await;
        env.start_python(&["services:Shared"]).await;
        assert_both_serve(&env).await;
        env.shutdown().await;
    })
    .await;
}

/// Sends `CALLS` calls of `shared.work` that take 50 ms each, from a Rust proxy, runs
/// `leave` while they are in flight, and returns who answered each call, in call order.
async fn calls_across(env: &Interop, leave: impl AsyncFnOnce()) -> Vec<String> {
    let proxy = env.cluster().proxy().await;
    let mut pending = Vec::new();
    for i in 0..CALLS {
        let reply = proxy
            .service("shared")
            .call_async::<(String, usize)>("work", (i, 0.05))
            .await
            .unwrap();
        pending.push(reply);
    }
    leave().await;
    let mut answered = Vec::new();
    for (i, reply) in pending.into_iter().enumerate() {
        let (who, index) = reply
            .result()
            .await
            .unwrap_or_else(|e| panic!("call {i} was lost: {e}"));
        assert_eq!(index, i);
        answered.push(who);
    }
    answered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_instance_leaving_a_shared_rpc_queue_hands_its_unstarted_calls_to_python() {
    run(async |env| {
        // Two workers but a prefetch of ten: the Rust instance holds calls it has not
        // started, which a graceful stop gives back to the queue.
        let mut env = env
            .with_config("max_workers", 2)
            .with_config("PREFETCH_COUNT", 10);
        env.start_python(&["services:Shared"]).await;
        let rust = env.start_rust::<Shared>().await;
        let answered = calls_across(&env, async || rust.stop().await.unwrap()).await;
        let python = answered.iter().filter(|who| *who == "python").count();
        assert!(
            python > CALLS / 2,
            "Python answered its share and what Rust gave back ({python} of {CALLS})"
        );
        assert_eq!(consumers(&env, "rpc-shared").await, 1);
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_instance_leaving_a_shared_rpc_queue_hands_its_calls_to_rust() {
    run(async |mut env| {
        env.start_rust::<Shared>().await;
        env.start_python_with(&["services:Shared"], json!({"max_workers": 2}))
            .await;
        // nameko 2 requeues what its workers are still running when it stops, so some
        // calls run twice; the caller takes the first answer.
        let answered = calls_across(&env, async || env.stop_python("shared").await).await;
        let rust = answered.iter().filter(|who| *who == "rust").count();
        assert!(
            rust > CALLS / 2,
            "Rust answered its share and what Python gave back ({rust} of {CALLS})"
        );
        assert_eq!(consumers(&env, "rpc-shared").await, 1);
        env.shutdown().await;
    })
    .await;
}

/// The indexes of the `event_type` events each side handled so far, Python's first.
async fn handled(
    env: &Interop,
    event_type: &str,
    rust: &Recorder,
    python_service: &str,
) -> (Vec<u64>, Vec<u64>) {
    let index =
        |payload: &Value| (payload["type"] == event_type).then(|| payload["i"].as_u64().unwrap());
    let python = env
        .python_records(python_service, 0)
        .await
        .iter()
        .filter_map(|record| index(&record["payload"]))
        .collect();
    let rust = rust.records().iter().filter_map(index).collect();
    (python, rust)
}

/// Dispatches `EVENTS` events of `event_type` from `jobs` and returns the indexes each
/// side handled, Python's first.
async fn share(
    env: &Interop,
    event_type: &str,
    rust: &Recorder,
    python_service: &str,
) -> (Vec<u64>, Vec<u64>) {
    let dispatcher = env.cluster().dispatcher().await;
    for i in 0..EVENTS {
        dispatcher
            .dispatch("jobs", event_type, json!({"type": event_type, "i": i}))
            .await
            .unwrap();
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (python, rust_handled) = handled(env, event_type, rust, python_service).await;
        if python.len() + rust_handled.len() >= EVENTS || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Give a stray second delivery time to show up.
    tokio::time::sleep(Duration::from_millis(200)).await;
    handled(env, event_type, rust, python_service).await
}

fn assert_each_once(event_type: &str, python: &[u64], rust: &[u64]) {
    let mut all: Vec<u64> = python.iter().chain(rust).copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..EVENTS as u64).collect::<Vec<_>>(),
        "{event_type}: every event handled once"
    );
    assert!(
        !python.is_empty() && !rust.is_empty(),
        "{event_type}: both sides took a share (Python {python:?}, Rust {rust:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rust_handlers_share_service_pool_event_queues() {
    run(async |mut env| {
        let rust = Recorder::new();
        env.start_rust_recording::<PoolShared>(&rust).await;
        env.start_python(&["services:PoolShared"]).await;
        // One reliable queue (durable) and one not (auto-delete): declared alike by both.
        assert_eq!(consumers(&env, "evt-jobs-job--pool_shared.handle").await, 2);
        assert_eq!(
            consumers(&env, "evt-jobs-hint--pool_shared.handle_hint").await,
            2
        );
        for event_type in ["job", "hint"] {
            let (python, rust) = share(&env, event_type, &rust, "pool_shared").await;
            assert_each_once(event_type, &python, &rust);
        }
        env.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_rust_handlers_share_a_singleton_event_queue() {
    run(async |mut env| {
        env.start_python(&["services:Singleton"]).await;
        let rust = Recorder::new();
        env.start_rust_recording::<Single>(&rust).await;
        assert_eq!(consumers(&env, "evt-jobs-job_once").await, 2);
        let (python, rust) = share(&env, "job_once", &rust, "py_single").await;
        assert_each_once("job_once", &python, &rust);
        env.shutdown().await;
    })
    .await;
}
