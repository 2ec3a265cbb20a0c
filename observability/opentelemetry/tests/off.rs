//! Without the instrumentation installed (this test binary never installs it), nothing
//! changes: messages carry no trace context of their own, and one that came with the
//! call goes on unchanged, as through an uninstrumented Python service.

use nameko::prelude::*;
use nameko::testing::TestCluster;

#[derive(Debug, Dependencies)]
struct Middle {
    end: RpcProxy,
}

#[service(name = "middle")]
impl Middle {
    #[rpc]
    async fn relay(&self) -> Result<Option<String>, RpcError> {
        self.end.call("traceparent", ()).await
    }
}

#[derive(Debug, Dependencies)]
struct End {
    context: ContextData,
}

#[service(name = "end")]
impl End {
    #[rpc]
    async fn traceparent(&self) -> Option<String> {
        self.context.get_str("traceparent").map(str::to_owned)
    }
}

#[tokio::test]
async fn without_the_instrumentation_messages_are_left_alone() {
    assert!(nameko::extension::instrumentation::installed().is_none());
    let mut cluster = TestCluster::memory();
    cluster.start::<Middle>().await;
    cluster.start::<End>().await;

    let proxy = cluster.proxy().await;
    let seen: Option<String> = proxy.service("middle").call("relay", ()).await.unwrap();
    assert_eq!(seen, None, "no trace context is made up");

    let upstream = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let proxy = cluster
        .proxy_with_context(ContextData::new().with("traceparent", upstream))
        .await;
    let seen: Option<String> = proxy.service("middle").call("relay", ()).await.unwrap();
    assert_eq!(
        seen.as_deref(),
        Some(upstream),
        "the caller's context goes on"
    );
    cluster.shutdown().await;
}
