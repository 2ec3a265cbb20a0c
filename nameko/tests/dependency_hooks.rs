//! `worker_complete`: a dependency sees the method's outcome before the entrypoint
//! handles it (before an RPC reply), while its value still exists, and can fail a
//! successful worker.

use std::sync::{Arc, Weak};

use nameko::dependency::{DependencyProvider, ProviderError};
use nameko::errors::RemoteError;
use nameko::prelude::*;
use nameko::testing::TestCluster;
use parking_lot::Mutex;

/// Records what the hooks saw; fails completion of workers whose method is `refused`.
#[derive(Clone, Default)]
struct Journal {
    lines: Arc<Mutex<Vec<String>>>,
    live: Arc<Mutex<Vec<Weak<String>>>>,
}

impl Journal {
    fn push(&self, line: impl Into<String>) {
        self.lines.lock().push(line.into());
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().clone()
    }
}

struct JournalProvider(Journal);

impl DependencyProvider for JournalProvider {
    type Output = Arc<String>;

    async fn get_dependency(&self, worker: &WorkerContext) -> Result<Arc<String>, ProviderError> {
        let value = Arc::new(worker.entrypoint().to_owned());
        self.0.live.lock().push(Arc::downgrade(&value));
        Ok(value)
    }

    async fn worker_complete(
        &self,
        worker: &WorkerContext,
        outcome: Result<(), &RemoteError>,
    ) -> Result<(), ProviderError> {
        let alive = self
            .0
            .live
            .lock()
            .iter()
            .any(|w| w.upgrade().is_some_and(|v| *v == worker.entrypoint()));
        let outcome = match outcome {
            Ok(()) => "ok".to_owned(),
            Err(e) => e.exc_type.clone(),
        };
        self.0.push(format!(
            "complete {} {outcome} alive={alive}",
            worker.entrypoint()
        ));
        if worker.entrypoint() == "refused" {
            return Err(ProviderError::new("commit refused"));
        }
        Ok(())
    }

    async fn worker_result(&self, worker: &WorkerContext, _result: &nameko::worker::WorkerResult) {
        self.0.push(format!("result {}", worker.entrypoint()));
    }
}

static JOURNAL: std::sync::OnceLock<Journal> = std::sync::OnceLock::new();

fn journal() -> Journal {
    JOURNAL.get_or_init(Journal::default).clone()
}

#[derive(Dependencies)]
struct Hooked {
    #[dependency(JournalProvider(journal()))]
    value: Arc<String>,
}

#[service(name = "hooked")]
impl Hooked {
    #[rpc]
    async fn fine(&self) -> String {
        journal().push(format!("method {}", self.value));
        "done".to_owned()
    }

    #[rpc]
    async fn refused(&self) -> String {
        "never seen".to_owned()
    }

    #[rpc]
    async fn fails(&self) -> Result<(), ServiceError> {
        Err(ServiceError::msg("boom"))
    }

    #[rpc]
    async fn panics(&self) {
        panic!("oh no");
    }
}

/// One test, so the process-wide journal sees one sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_complete_runs_before_the_reply_and_can_fail_the_worker() {
    let mut cluster = TestCluster::memory();
    cluster.start::<Hooked>().await;
    let proxy = cluster.proxy().await;
    let hooked = proxy.service("hooked");

    let out: String = hooked.call("fine", ()).await.unwrap();
    assert_eq!(out, "done");
    // The reply came after `worker_complete`, while the instance was alive
    // (`worker_result` may or may not have run yet: it follows the reply).
    assert_eq!(
        journal().lines()[..2],
        ["method fine", "complete fine ok alive=true"]
    );

    let err = hooked.call::<String>("refused", ()).await.unwrap_err();
    assert_eq!(err.remote().unwrap().value, "commit refused", "{err:?}");

    let err = hooked.call::<()>("fails", ()).await.unwrap_err();
    assert_eq!(err.remote().unwrap().value, "boom");

    let err = hooked.call::<()>("panics", ()).await.unwrap_err();
    assert_eq!(err.remote().unwrap().exc_type, "WorkerPanic");

    cluster.run_until_idle().await.unwrap();
    let lines = journal().lines();
    for expected in [
        "complete refused ok alive=true",
        "complete fails Exception alive=true",
        "complete panics WorkerPanic alive=true",
        "result fine",
        "result refused",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "{expected:?} in {lines:#?}"
        );
    }
    cluster.shutdown().await;
}
