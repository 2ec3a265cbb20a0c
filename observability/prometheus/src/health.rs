//! Readiness: every container of the process running, and its broker connection up.

use nameko_core::extension::{ContainerState, SharedExtensions};
use nameko_core::transport::TransportStatus;
use serde_json::{Map, Value, json};

/// One service, as the readiness probe sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceHealth {
    /// The service name.
    pub service: String,
    /// `created`, `starting`, `running`, `stopping`, `stopped`, `killed` or `crashed`.
    pub state: &'static str,
    /// `connecting`, `connected`, `reconnecting` or `closed`.
    pub broker: &'static str,
}

impl ServiceHealth {
    /// Whether it takes work: running, with its broker connection up.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.state == "running" && self.broker == "connected"
    }
}

/// What `GET /health/ready` answers: ready or not, why not, and each service.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Readiness {
    /// Whether every service is ready (and there is at least one).
    pub ready: bool,
    /// Why not, for people: the first service that is not ready and what it is doing.
    pub reason: Option<String>,
    /// Every container of the process, in the order they were built.
    pub services: Vec<ServiceHealth>,
}

impl Readiness {
    /// The JSON body of the probe's answer:
    /// `{"status": "ready", "services": {"calculator": {"state": "running", "broker": "connected"}}}`,
    /// or `{"status": "not ready", "reason": "...", "services": {...}}`.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let services: Map<String, Value> = self
            .services
            .iter()
            .map(|s| {
                (
                    s.service.clone(),
                    json!({"state": s.state, "broker": s.broker}),
                )
            })
            .collect();
        let mut body = Map::new();
        body.insert(
            "status".to_owned(),
            json!(if self.ready { "ready" } else { "not ready" }),
        );
        if let Some(reason) = &self.reason {
            body.insert("reason".to_owned(), json!(reason));
        }
        body.insert("services".to_owned(), Value::Object(services));
        Value::Object(body)
    }
}

fn state_name(state: &ContainerState) -> &'static str {
    match state {
        ContainerState::Created => "created",
        ContainerState::Starting => "starting",
        ContainerState::Running => "running",
        ContainerState::Stopping => "stopping",
        ContainerState::Stopped => "stopped",
        ContainerState::Killed => "killed",
        ContainerState::Crashed(_) => "crashed",
        _ => "unknown",
    }
}

fn broker_name(status: &TransportStatus) -> &'static str {
    match status {
        TransportStatus::Connecting => "connecting",
        TransportStatus::Connected => "connected",
        TransportStatus::Reconnecting { .. } => "reconnecting",
        TransportStatus::Closed => "closed",
        _ => "unknown",
    }
}

/// The readiness of the containers of a scope (a runner's, a test cluster's: what
/// [`ContainerContext::process_scope`](nameko_core::extension::ContainerContext::process_scope)
/// gives).
///
/// ```
/// use nameko_core::extension::SharedExtensions;
///
/// let readiness = nameko_prometheus::readiness(&SharedExtensions::new());
/// assert!(!readiness.ready);
/// assert_eq!(readiness.reason.as_deref(), Some("no service runs in this process"));
/// ```
#[must_use]
pub fn readiness(scope: &SharedExtensions) -> Readiness {
    let services: Vec<ServiceHealth> = scope
        .containers()
        .iter()
        .map(|ctx| ServiceHealth {
            service: ctx.service_name().to_owned(),
            state: state_name(&ctx.state()),
            broker: broker_name(&ctx.transport().status().borrow()),
        })
        .collect();
    let reason = if services.is_empty() {
        Some("no service runs in this process".to_owned())
    } else {
        services.iter().find(|s| !s.is_ready()).map(|s| {
            if s.state == "running" {
                format!("{}: broker connection {}", s.service, s.broker)
            } else {
                format!("{}: {}", s.service, s.state)
            }
        })
    };
    Readiness {
        ready: reason.is_none(),
        reason,
        services,
    }
}
