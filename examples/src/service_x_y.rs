//! Two services, one calling the other: the smallest nameko cluster.

use nameko::prelude::*;

/// Appends `-y` to what it is given.
#[derive(Debug, Dependencies)]
pub struct ServiceY;

#[service(name = "service_y")]
impl ServiceY {
    /// `"<value>-y"`.
    #[rpc]
    pub async fn append_identifier(&self, value: String) -> String {
        format!("{value}-y")
    }
}

/// Appends `-x`, then asks `service_y` to append its own identifier.
#[derive(Debug, Dependencies)]
pub struct ServiceX {
    service_y: RpcProxy,
}

#[service(name = "service_x")]
impl ServiceX {
    /// `service_y.append_identifier("<value>-x")`, i.e. `"<value>-x-y"`.
    #[rpc]
    pub async fn remote_method(&self, value: String) -> Result<String, RpcError> {
        self.service_y
            .call("append_identifier", (format!("{value}-x"),))
            .await
    }
}
