//! Instrumentation: one process-wide hook that sees every worker and every message a
//! service sends, for tracing and telemetry crates.
//!
//! nameko's instrumentation packages (opentelemetry-instrumentation-nameko,
//! nameko-tracer) wrap the container's worker setup and the RPC, event and publisher
//! clients. nameko-rs offers the same places as a trait, [`Instrumentation`], installed
//! once per process with [`install`]:
//!
//! - [`Instrumentation::worker_span`] makes the `tracing` span a worker runs in, from the
//!   worker's context, its entrypoint's kind and what the call came with (a
//!   [`Carrier`]: the context data of an AMQP message, the headers of an HTTP request);
//! - [`Instrumentation::worker_ended`] sees how the method ended (before the entrypoint
//!   answers);
//! - [`Instrumentation::outgoing`] sees every RPC request, event and published message a
//!   service (or a standalone client) sends, may add headers to it, and may give the
//!   span the send (and, for RPC, the wait for the reply) runs in;
//! - [`Instrumentation::outgoing_ended`] sees how that ended.
//!
//! Nothing is installed by default, and then none of this costs more than one atomic
//! load per worker and per message: workers run in core's own `worker` span, and
//! messages go out with the worker's headers as they are.
//!
//! ```
//! use nameko_core::extension::instrumentation::{self, Instrumentation, Outgoing};
//! use nameko_core::transport::FieldTable;
//!
//! /// Marks every message with the process that sent it.
//! struct Stamp;
//!
//! impl Instrumentation for Stamp {
//!     fn outgoing(&self, _message: &Outgoing<'_>, headers: &mut FieldTable) -> Option<tracing::Span> {
//!         headers.insert("x-sent-by", "billing-host-1");
//!         None
//!     }
//! }
//!
//! assert!(instrumentation::install(Stamp));
//! assert!(instrumentation::installed().is_some());
//! ```

use std::fmt;
use std::future::Future;
use std::sync::{Arc, OnceLock};

use tracing::{Instrument, Span};

use crate::context::ContextData;
use crate::errors::RpcError;
use crate::transport::FieldTable;
use crate::worker::WorkerContext;

/// What a call came with, read by key: the context data of an AMQP message (its
/// `nameko.<key>` headers), or the headers of an HTTP request (lower-case names). A
/// propagator reads `traceparent` from it.
pub trait Carrier {
    /// The value of `key`, if it is there and is a string.
    fn get(&self, key: &str) -> Option<&str>;

    /// Every key.
    fn keys(&self) -> Vec<&str>;
}

impl Carrier for ContextData {
    fn get(&self, key: &str) -> Option<&str> {
        self.get_str(key)
    }

    fn keys(&self) -> Vec<&str> {
        self.iter().map(|(key, _)| key).collect()
    }
}

/// A worker about to run: what [`Instrumentation::worker_span`] makes its span from.
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct WorkerStart<'a> {
    /// The worker: service, entrypoint, call id, call id stack, context data.
    pub worker: &'a WorkerContext,
    /// The kind of the entrypoint that started it ([`Entrypoint::kind`]: `"rpc"`,
    /// `"event_handler"`, `"consume"`, `"timer"`, `"http"`, ...), empty when the worker
    /// was started by hand (a test's entrypoint hook).
    ///
    /// [`Entrypoint::kind`]: super::Entrypoint::kind
    pub entrypoint_kind: &'a str,
    /// What the call came with: the worker's context data, or the HTTP request's headers.
    pub incoming: &'a dyn Carrier,
}

impl fmt::Debug for WorkerStart<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerStart")
            .field("call_id", &self.worker.call_id())
            .field("entrypoint_kind", &self.entrypoint_kind)
            .finish_non_exhaustive()
    }
}

/// A message on its way out.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Outgoing<'a> {
    /// An RPC request to `service.method`; its span lasts until the reply arrives (or the
    /// call fails).
    RpcRequest {
        /// The target service.
        service: &'a str,
        /// The method.
        method: &'a str,
    },
    /// An event dispatched as `source`.
    Event {
        /// The service the event comes from (its exchange is `<source>.events`).
        source: &'a str,
        /// The event type (the routing key).
        event_type: &'a str,
    },
    /// A message of a `Publisher`.
    Message {
        /// The exchange (`""`: the default exchange).
        exchange: &'a str,
        /// The routing key.
        routing_key: &'a str,
    },
}

/// How a worker's method, or an outgoing message, ended. Only the error's type is
/// given: error values may carry call arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome<'a> {
    /// It succeeded (for an RPC request: the reply carries a result).
    Ok,
    /// It failed.
    Failed {
        /// The error's type: a worker's `exc_type`; for an RPC request the remote
        /// `exc_type`, or `UnknownService`, `RpcTimeout`, `TransportError`, ...
        exc_type: &'a str,
        /// Whether the error is one of the entrypoint's `expected_exceptions` (always
        /// `false` for outgoing messages).
        expected: bool,
    },
}

impl<'a> Outcome<'a> {
    /// The outcome of an RPC call.
    #[must_use]
    pub fn of_rpc<T>(result: &'a Result<T, RpcError>) -> Self {
        match result {
            Ok(_) => Self::Ok,
            Err(error) => Self::of_rpc_error(error),
        }
    }

    /// The outcome of an RPC call that failed with `error`.
    #[must_use]
    pub fn of_rpc_error(error: &'a RpcError) -> Self {
        Self::Failed {
            exc_type: rpc_error_type(error),
            expected: false,
        }
    }
}

/// The type name an RPC call error is reported under.
fn rpc_error_type(error: &RpcError) -> &str {
    if let Some(remote) = error.remote() {
        return &remote.exc_type;
    }
    match error {
        RpcError::Remote(_) | RpcError::Registered(_) => "RemoteError",
        RpcError::MethodNotFound(_) => "MethodNotFound",
        RpcError::IncorrectSignature(_) => "IncorrectSignature",
        RpcError::MalformedRequest(_) => "MalformedRequest",
        RpcError::UnknownService(_) => "UnknownService",
        RpcError::Timeout(_) => "RpcTimeout",
        RpcError::Transport(_) => "TransportError",
        RpcError::Refused => "PublishRefused",
        RpcError::InvalidArguments(_) => "InvalidArguments",
        RpcError::InvalidReply(_) => "InvalidReply",
        RpcError::RepliesLost(_) => "ReplyQueueExpiredWithPendingReplies",
        RpcError::Stopped => "RpcProxyStopped",
    }
}

/// Sees every worker and every outgoing message of the process; see the
/// [module docs](self). Every method has a default that does nothing.
///
/// The methods are called on the hot path, synchronously: keep them short.
pub trait Instrumentation: Send + Sync + 'static {
    /// The span a worker runs in (its dependencies, its method, the entrypoint's answer),
    /// instead of core's `worker` span; `None` keeps core's.
    fn worker_span(&self, start: &WorkerStart<'_>) -> Option<Span> {
        let _ = start;
        None
    }

    /// The worker's method ended (its dependencies saw the outcome; the entrypoint has
    /// not answered yet). `span` is the worker's span. Not called for a worker of a
    /// container that is killed.
    fn worker_ended(&self, span: &Span, worker: &WorkerContext, outcome: Outcome<'_>) {
        let _ = (span, worker, outcome);
    }

    /// A message is about to be sent with `headers` (the sender's context data as
    /// `nameko.<key>` and its call id stack), which this may change. Returns the span the
    /// send runs in, if any; for an RPC request it lasts until the reply arrives.
    fn outgoing(&self, message: &Outgoing<'_>, headers: &mut FieldTable) -> Option<Span> {
        let _ = (message, headers);
        None
    }

    /// The message (or the RPC call) whose send [`outgoing`](Self::outgoing) gave
    /// `span` ended.
    fn outgoing_ended(&self, span: &Span, outcome: Outcome<'_>) {
        let _ = (span, outcome);
    }
}

static INSTALLED: OnceLock<Box<dyn Instrumentation>> = OnceLock::new();

/// Installs the process's instrumentation; `false` (and `instrumentation` dropped) when
/// one is installed already: the first one stays for the life of the process.
pub fn install(instrumentation: impl Instrumentation) -> bool {
    INSTALLED.set(Box::new(instrumentation)).is_ok()
}

/// The process's instrumentation, if one is installed.
#[must_use]
#[inline]
pub fn installed() -> Option<&'static dyn Instrumentation> {
    INSTALLED.get().map(Box::as_ref)
}

/// An outgoing message with its span, until it ends.
pub(crate) struct Traced {
    span: Span,
    hooks: &'static dyn Instrumentation,
}

impl fmt::Debug for Traced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Traced")
            .field("span", &self.span)
            .finish_non_exhaustive()
    }
}

impl Traced {
    pub(crate) fn span(&self) -> &Span {
        &self.span
    }

    pub(crate) fn end(self, outcome: Outcome<'_>) {
        self.hooks.outgoing_ended(&self.span, outcome);
    }
}

/// The headers `message` goes out with, and its span, as the installed instrumentation
/// wants them; `headers` itself (no copy) when none is installed.
pub(crate) fn begin(
    message: &Outgoing<'_>,
    headers: &Arc<FieldTable>,
) -> (Arc<FieldTable>, Option<Traced>) {
    let Some(hooks) = installed() else {
        return (Arc::clone(headers), None);
    };
    let mut table = FieldTable::clone(headers);
    let span = hooks.outgoing(message, &mut table);
    (Arc::new(table), span.map(|span| Traced { span, hooks }))
}

/// Runs the send of an outgoing message in its span (if it has one), and reports how it
/// ended: an error as `exc_type`.
pub(crate) async fn finish<T, E>(
    send: impl Future<Output = Result<T, E>>,
    traced: Option<Traced>,
    exc_type: &str,
) -> Result<T, E> {
    let Some(traced) = traced else {
        return send.await;
    };
    let result = send.instrument(traced.span().clone()).await;
    traced.end(match &result {
        Ok(_) => Outcome::Ok,
        Err(_) => Outcome::Failed {
            exc_type,
            expected: false,
        },
    });
    result
}
