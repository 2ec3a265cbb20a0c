//! A service that reads its caller's context data.

use std::time::{SystemTime, UNIX_EPOCH};

use nameko::prelude::*;

/// `audit_service`: records actions with who asked and under which correlation id.
#[derive(Debug, Dependencies)]
pub struct AuditService {
    context: ContextData,
}

#[service(name = "audit_service")]
impl AuditService {
    /// `{"action", "user_id", "correlation_id", "timestamp"}`: the two ids come from the
    /// caller's context data (`null` when the caller sent none), the timestamp is seconds
    /// since the Unix epoch.
    #[rpc]
    pub async fn log_action(&self, action: String, data: Value) -> Value {
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        tracing::info!(%action, %data, "audit");
        json!({
            "action": action,
            "user_id": self.context.user_id(),
            "correlation_id": self.context.get("correlation_id"),
            "timestamp": timestamp,
        })
    }
}
