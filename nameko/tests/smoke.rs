//! Smoke test: two services on one in-memory broker, one calling the other.

use std::sync::Arc;

use nameko::memory::MemoryBroker;
use nameko::prelude::*;

#[derive(Dependencies)]
struct ServiceY;

#[service(name = "service_y")]
impl ServiceY {
    #[rpc]
    async fn append_identifier(&self, value: String) -> String {
        format!("{value}-y")
    }
}

#[derive(Dependencies)]
struct ServiceX {
    service_y: RpcProxy,
}

#[service(name = "service_x")]
impl ServiceX {
    #[rpc]
    async fn remote_method(&self, value: String) -> Result<String, RpcError> {
        self.service_y
            .call("append_identifier", (format!("{value}-x"),))
            .await
    }
}

#[tokio::test]
async fn chain() {
    let broker = MemoryBroker::new();
    let t = || -> Arc<dyn nameko::transport::Transport> { Arc::new(broker.connect()) };
    let y = ServiceContainer::<ServiceY>::new(t(), Config::new()).unwrap();
    let x = ServiceContainer::<ServiceX>::new(t(), Config::new()).unwrap();
    y.start().await.unwrap();
    x.start().await.unwrap();
    let proxy = ClusterRpcProxy::start(t(), &Config::new()).await.unwrap();
    let out: String = proxy
        .service("service_x")
        .call("remote_method", ("hello",))
        .await
        .unwrap();
    assert_eq!(out, "hello-x-y");
    let err = proxy
        .service("service_x")
        .call::<Value>("nope", ())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RpcError::MethodNotFound(ref m) if m == "nope"),
        "{err:?}"
    );
    let err = proxy
        .service("service_z")
        .call::<Value>("nope", ())
        .await
        .unwrap_err();
    assert!(matches!(err, RpcError::UnknownService(_)), "{err:?}");
    x.stop().await.unwrap();
    y.stop().await.unwrap();
}
