//! Replacing dependencies and restricting entrypoints before a container starts.

use nameko::container::ContainerError;
use nameko::prelude::*;
use nameko_testing::{
    RpcProxyMock, TestCluster, replace_dependencies, replace_dependency, restrict_entrypoints,
};

#[derive(Dependencies)]
struct Reporter {
    store: RpcProxy,
    events: EventDispatcher,
}

#[service(name = "reporter")]
impl Reporter {
    #[rpc]
    async fn report(&self, text: String) -> Result<Value, ServiceError> {
        let id: Value = self.store.call("save", (text.clone(),)).await?;
        self.events.dispatch("reported", json!({"id": id})).await?;
        Ok(id)
    }

    #[timer(interval = 0.01, eager = true)]
    async fn heartbeat(&self) -> Result<(), ServiceError> {
        self.events.dispatch("heartbeat", json!({})).await?;
        Ok(())
    }
}

#[tokio::test]
async fn replaced_dependencies_are_returned_as_mocks() {
    let mut cluster = TestCluster::memory();
    let container = cluster.container::<Reporter>().await;
    let mocks = replace_dependencies(&container, &["events"]).unwrap();
    replace_dependency(&container, "store", RpcProxyMock::new().reply("save", 17)).unwrap();
    restrict_entrypoints(&container, &["report"]).unwrap();
    container.start().await.unwrap();
    let proxy = cluster.proxy().await;
    let id: i64 = proxy
        .service("reporter")
        .call("report", ("hello",))
        .await
        .unwrap();
    assert_eq!(id, 17);
    let events = mocks.events("events");
    events.assert_dispatched_once("reported", json!({"id": 17}));
    assert_eq!(events.events()[0].source, "reporter");
    assert_eq!(
        events.events()[0].call_id_stack.len(),
        2,
        "the worker's stack reaches the mock"
    );
    // The timer was restricted away: no heartbeat ever fired.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(events.payloads("heartbeat").is_empty());
    cluster.shutdown().await;
}

#[tokio::test]
async fn replacing_refuses_unknown_names_and_started_containers() {
    let mut cluster = TestCluster::memory();
    let container = cluster.container::<Reporter>().await;
    let err = replace_dependencies(&container, &["storage"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the service has no dependency `storage`; its dependencies are: store, events"
    );
    let err = restrict_entrypoints(&container, &["reprot"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the service has no entrypoint `reprot`; its entrypoints are: report, heartbeat"
    );
    container.start().await.unwrap();
    assert!(matches!(
        replace_dependencies(&container, &["store"]),
        Err(ContainerError::AlreadyStarted)
    ));
    assert!(matches!(
        restrict_entrypoints(&container, &["report"]),
        Err(ContainerError::AlreadyStarted)
    ));
    cluster.shutdown().await;
}
