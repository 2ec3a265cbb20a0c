//! The extension API as a crate of its own uses it: an entrypoint kind defined here, with
//! a process-wide shared extension, native arguments and native results; and the checks
//! the built-in entrypoints make of their methods.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nameko::extension::{
    Collector, Entrypoint, EntrypointContext, ExtensionError, SharedExtension, Workers,
};
use nameko::method::{FromArg, IntoOutput, Method, Natives, Output};
use nameko::prelude::*;
use nameko::service::Service;
use nameko::testing::TestCluster;

/// A job handed to an `#[inbox]` method: not JSON, so it travels as a native value.
#[derive(Debug)]
pub struct Job(String);

impl FromArg for Job {
    fn from_arg(_json: &Value, natives: &mut Natives) -> Result<Self, String> {
        natives
            .take::<Job>()
            .ok_or_else(|| "is a job, and none was given".to_owned())
    }
}

/// What an `#[inbox]` method answers: a native result.
#[derive(Debug, PartialEq)]
pub struct Receipt(String);

impl IntoOutput for Receipt {
    fn into_output(self) -> Result<Output, RemoteError> {
        Ok(Output::Native(Box::new(self)))
    }
}

/// One post office per process: inboxes of every service register with it.
#[derive(Debug, Default)]
pub struct PostOffice {
    inboxes: Collector<(String, Workers, &'static str)>,
    starts: AtomicUsize,
    stops: AtomicUsize,
    closes: AtomicUsize,
}

#[async_trait::async_trait]
impl SharedExtension for PostOffice {
    async fn start(&self) -> Result<(), ExtensionError> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn stop(&self) {
        self.stops.fetch_add(1, Ordering::SeqCst);
    }

    async fn close(&self) {
        self.closes.fetch_add(1, Ordering::SeqCst);
    }
}

impl PostOffice {
    /// Delivers a job to the inbox `name`, as user `user`, and returns the receipt.
    async fn deliver(&self, name: &str, job: &str, user: &str) -> Result<Receipt, String> {
        let (_, workers, method) = self
            .inboxes
            .items()
            .into_iter()
            .find(|(n, _, _)| n == name)
            .ok_or_else(|| format!("no inbox `{name}`"))?;
        let mut args = CallArgs::new();
        let mut natives = Natives::new();
        natives.positional(&mut args, Job(job.to_owned()));
        let call = workers
            .bind_with(method, args, natives)
            .map_err(|e| e.to_string())?;
        let slot = workers.slot().await.map_err(|e| e.to_string())?;
        let context = ContextData::new().with("user_id", user);
        let worker = workers.start(slot, call, context, &["post_office.deliver.0".to_owned()]);
        let mut run = worker.run().await;
        let receipt = match run.result() {
            Ok(_) => run
                .take_native::<Receipt>()
                .ok_or("not a receipt".to_owned()),
            Err(error) => Err(error.to_string()),
        };
        run.finish().await;
        receipt
    }
}

/// The `#[inbox("name")]` entrypoint.
#[derive(Debug)]
pub struct Inbox {
    name: String,
    office: Option<Arc<PostOffice>>,
}

#[async_trait::async_trait]
impl Entrypoint for Inbox {
    fn kind(&self) -> &'static str {
        "inbox"
    }

    fn check(&self, method: &Method) -> Result<(), ExtensionError> {
        if method.params.is_empty() {
            return Err(ExtensionError::definition(
                "an `#[inbox]` method takes the job as its first argument",
            ));
        }
        Ok(())
    }

    async fn setup(&mut self, ctx: &EntrypointContext) -> Result<(), ExtensionError> {
        let office = ctx.container().process_shared("", PostOffice::default);
        office
            .inboxes
            .register((self.name.clone(), ctx.workers().clone(), ctx.method().name));
        self.office = Some(office);
        Ok(())
    }

    async fn stop(&self) {
        if let Some(office) = &self.office {
            office.inboxes.unregister(|(n, _, _)| *n == self.name);
        }
    }
}

macro_rules! inbox {
    ($name:expr) => {
        Inbox {
            name: $name.to_owned(),
            office: None,
        }
    };
}

#[derive(Dependencies)]
struct Alpha {
    context: ContextData,
    worker: Arc<WorkerContext>,
}

#[service(name = "alpha")]
impl Alpha {
    #[inbox("greetings")]
    async fn greet(&self, job: Job) -> Receipt {
        Receipt(format!(
            "{} for {} (stack {})",
            job.0,
            self.context
                .user_id()
                .and_then(Value::as_str)
                .unwrap_or("nobody"),
            self.worker.call_id_stack().len()
        ))
    }

    #[inbox("slow")]
    async fn slow(&self, job: Job) -> Receipt {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Receipt(job.0)
    }

    #[rpc]
    async fn ping(&self) -> &'static str {
        "pong"
    }
}

#[derive(Dependencies)]
struct Beta;

#[service(name = "beta")]
impl Beta {
    #[inbox("complaints")]
    async fn complain(&self, job: Job, urgent: Option<bool>) -> Result<Receipt, ServiceError> {
        if urgent.unwrap_or(false) {
            return Err(ServiceError::msg("no urgent complaints"));
        }
        Ok(Receipt(format!("filed: {}", job.0)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_entrypoint_runs_its_methods_through_the_container() {
    let mut cluster = TestCluster::memory();
    let alpha = cluster.start::<Alpha>().await;
    let _beta = cluster.start::<Beta>().await;
    let office = alpha.context().process_shared("", PostOffice::default);

    let receipt = office.deliver("greetings", "hello", "u1").await.unwrap();
    // The parent stack given, plus the worker's own call id.
    assert_eq!(receipt, Receipt("hello for u1 (stack 2)".to_owned()));
    let receipt = office.deliver("complaints", "noise", "u2").await.unwrap();
    assert_eq!(receipt, Receipt("filed: noise".to_owned()));
    // Built-in entrypoints run beside it.
    let pong: String = cluster
        .proxy()
        .await
        .service("alpha")
        .call("ping", ())
        .await
        .unwrap();
    assert_eq!(pong, "pong");
    // One post office for both services, started once.
    assert_eq!(office.starts.load(Ordering::SeqCst), 1);

    cluster.shutdown().await;
    assert_eq!(office.stops.load(Ordering::SeqCst), 1);
    assert_eq!(office.closes.load(Ordering::SeqCst), 1);
    assert!(office.inboxes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_shared_extension_stops_with_its_last_container() {
    let mut cluster = TestCluster::memory();
    let alpha = cluster.start::<Alpha>().await;
    let beta = cluster.start::<Beta>().await;
    let office = alpha.context().process_shared("", PostOffice::default);
    alpha.stop().await.unwrap();
    assert_eq!(office.stops.load(Ordering::SeqCst), 0, "beta still uses it");
    assert_eq!(office.inboxes.items().len(), 1);
    beta.stop().await.unwrap();
    assert_eq!(office.stops.load(Ordering::SeqCst), 1);
    assert_eq!(office.closes.load(Ordering::SeqCst), 1);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_waits_for_a_custom_entrypoints_worker() {
    let mut cluster = TestCluster::memory();
    let alpha = cluster.start::<Alpha>().await;
    let office = alpha.context().process_shared("", PostOffice::default);
    let delivery = {
        let office = office.clone();
        tokio::spawn(async move { office.deliver("slow", "late", "u").await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(alpha.running_workers(), 1);
    alpha.stop().await.unwrap();
    assert_eq!(
        delivery.await.unwrap().unwrap(),
        Receipt("late".to_owned()),
        "the worker finished before the container stopped"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_entrypoints_errors_and_arguments_are_the_methods() {
    let mut cluster = TestCluster::memory();
    let beta = cluster.start::<Beta>().await;
    let office = beta.context().process_shared("", PostOffice::default);
    // Optional parameters may be left out; a JSON keyword argument binds beside the job.
    let (_, workers, method) = office.inboxes.items().remove(0);
    let mut args = CallArgs::new();
    let mut natives = Natives::new();
    natives.positional(&mut args, Job("x".to_owned()));
    let call = workers
        .bind_with(method, args.kwarg("urgent", true), natives)
        .unwrap();
    let slot = workers.slot().await.unwrap();
    let run = workers
        .start(slot, call, ContextData::new(), &[])
        .run()
        .await;
    let error = run.finish_with_result().await.unwrap_err();
    assert_eq!(error.value, "no urgent complaints");
    // Without the native value the parameter says what is missing.
    let error = workers.bind(method, CallArgs::new().arg(1)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "TypeError: complain() argument 'job' is a job, and none was given"
    );
    cluster.shutdown().await;
}

#[derive(Dependencies)]
struct NoJob;

#[service(name = "no_job")]
impl NoJob {
    #[inbox("nothing")]
    async fn nothing(&self) -> Receipt {
        Receipt(String::new())
    }
}

#[derive(Dependencies)]
struct BadHandler;

#[service(name = "bad_handler")]
impl BadHandler {
    #[event_handler("orders", "placed")]
    async fn on_placed(&self, _order: Value, _extra: Value) {}
}

#[derive(Dependencies)]
struct BadTimer;

#[service(name = "bad_timer")]
impl BadTimer {
    #[timer(interval = 5)]
    async fn tick(&self, _n: u32) {}
}

fn definition_error<S: Service>() -> String {
    let broker = nameko::memory::MemoryBroker::new();
    match ServiceContainer::<S>::new(Arc::new(broker.connect()), Config::new()) {
        Ok(_) => panic!("`{}` was accepted", S::name()),
        Err(error) => error.to_string(),
    }
}

#[test]
fn entrypoints_refuse_methods_that_do_not_fit() {
    assert_eq!(
        definition_error::<NoJob>(),
        "inbox entrypoint `nothing`: an `#[inbox]` method takes the job as its first argument"
    );
    assert_eq!(
        definition_error::<BadHandler>(),
        "event_handler entrypoint `on_placed`: a `#[event_handler]` method takes exactly one argument besides `&self`: the message payload (`on_placed` takes 2)"
    );
    assert_eq!(
        definition_error::<BadTimer>(),
        "timer entrypoint `tick`: a `#[timer]` method takes no arguments besides `&self` (`tick` takes 1)"
    );
}

#[derive(Dependencies)]
struct Twice;

#[service(name = "twice")]
impl Twice {
    #[rpc]
    #[event_handler("orders", "placed")]
    async fn record(&self, order: Value) -> Value {
        order
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_method_can_have_two_entrypoints() {
    let mut cluster = TestCluster::memory();
    let twice = cluster.start::<Twice>().await;
    let mut workers = twice.subscribe_workers();
    let echoed: Value = cluster
        .proxy()
        .await
        .service("twice")
        .call("record", (json!({"id": 1}),))
        .await
        .unwrap();
    assert_eq!(echoed, json!({"id": 1}));
    workers.recv().await.unwrap();
    cluster.dispatch("orders", "placed", json!({"id": 2})).await;
    let event = tokio::time::timeout(Duration::from_secs(5), workers.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.result, Ok(json!({"id": 2})));
    cluster.shutdown().await;
}
