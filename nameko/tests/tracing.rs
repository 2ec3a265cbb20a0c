//! Every worker runs in a `worker` tracing span carrying its service, entrypoint and call
//! id; and no log line or span field carries an auth token.

use std::sync::{Arc, Mutex};

use nameko::prelude::*;
use nameko::testing::TestCluster;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

#[derive(Default, Clone)]
struct Recorded {
    spans: Arc<Mutex<Vec<(String, String)>>>,
    everything: Arc<Mutex<String>>,
}

struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl<S: Subscriber> Layer<S> for Recorded {
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        let mut fields = String::new();
        attrs.record(&mut Fields(&mut fields));
        self.everything.lock().unwrap().push_str(&fields);
        self.spans
            .lock()
            .unwrap()
            .push((attrs.metadata().name().to_owned(), fields));
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = String::new();
        event.record(&mut Fields(&mut fields));
        self.everything.lock().unwrap().push_str(&fields);
    }
}

#[derive(Dependencies)]
struct Secretive {
    context: ContextData,
}

#[service(name = "secretive")]
impl Secretive {
    #[rpc]
    async fn whoami(&self) -> Result<Value, ServiceError> {
        tracing::info!(context = ?self.context, "serving");
        Err(ServiceError::msg("denied"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_have_spans_with_their_call_id_and_no_secrets_are_logged() {
    let recorded = Recorded::default();
    tracing_subscriber::registry()
        .with(
            recorded
                .clone()
                .with_filter(tracing_subscriber::filter::LevelFilter::TRACE),
        )
        .init();
    let mut cluster = TestCluster::memory().predictable_call_ids();
    cluster.start::<Secretive>().await;
    let proxy = cluster
        .proxy_with_context(
            ContextData::new()
                .with("auth_token", "s3cret-token")
                .with("user_id", 1),
        )
        .await;
    proxy
        .service("secretive")
        .call::<Value>("whoami", ())
        .await
        .unwrap_err();
    cluster.shutdown().await;

    let spans = recorded.spans.lock().unwrap().clone();
    let worker = spans
        .iter()
        .find(|(name, _)| name == "worker")
        .expect("a worker span");
    assert!(worker.1.contains(r#"service="secretive""#), "{}", worker.1);
    assert!(worker.1.contains(r#"entrypoint="whoami""#), "{}", worker.1);
    assert!(
        worker.1.contains(r#"call_id="secretive.whoami.0""#),
        "{}",
        worker.1
    );
    let everything = recorded.everything.lock().unwrap().clone();
    assert!(everything.contains("denied"), "the failure was logged");
    assert!(
        !everything.contains("s3cret-token"),
        "the auth token never reaches a log"
    );
}
