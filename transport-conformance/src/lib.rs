//! nameko-transport-conformance: one set of behaviour cases that every
//! [`Transport`] backend must pass, in the spirit of Watermill's universal Pub/Sub tests.
//!
//! It depends on `nameko-transport` alone, so a backend runs it from its own tests without
//! pulling in the framework. `nameko-testing` re-exports it as `nameko_testing::conformance`.
//!
//! A backend's test file implements [`Harness`] and calls [`run_transport_suite`]. The
//! suite reads the backend's [`Capabilities`] to decide which cases apply.
//!
//! Every case runs under a time bound ([`Harness::case_timeout`]): a hung case is a
//! failure, not a hang. Each case names its exchanges and queues with a fresh unique
//! prefix and deletes them afterwards, pass or fail, so the suite can run on a shared
//! RabbitMQ virtual host. Failures about messages name the `message_id`s that went missing
//! or came twice. Set `NAMEKO_CONFORMANCE_FILTER` to a substring of case names to run
//! only those.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use async_trait::async_trait;
//! use nameko_transport::{Capabilities, Transport};
//! use nameko_transport_conformance::{Harness, run_transport_suite};
//!
//! struct MyBackend;
//!
//! #[async_trait]
//! impl Harness for MyBackend {
//!     fn capabilities(&self) -> Capabilities {
//!         Capabilities::none("mine")
//!     }
//!     async fn connect(&self) -> Arc<dyn Transport> {
//!         unimplemented!("open a connection to the broker under test")
//!     }
//!     async fn settle(&self) {
//!         tokio::time::sleep(Duration::from_millis(50)).await;
//!     }
//!     async fn advance(&self, duration: Duration) {
//!         tokio::time::sleep(duration).await;
//!     }
//!     fn quiet_period(&self) -> Duration {
//!         Duration::from_millis(200)
//!     }
//!     fn receive_timeout(&self) -> Duration {
//!         Duration::from_secs(5)
//!     }
//! }
//!
//! # async fn example() {
//! run_transport_suite(&MyBackend).await;
//! # }
//! ```

mod cases;
mod runner;
mod support;
mod topic;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nameko_transport::{Capabilities, Transport};

pub use topic::{TOPIC_CASES, reference_topic_match};

use cases::{delivery, lifecycle, policies, properties, publish, routing};
use runner::{Requires, Runner};

/// What the suite needs from a backend under test.
#[async_trait]
pub trait Harness: Send + Sync {
    /// What the backend guarantees.
    fn capabilities(&self) -> Capabilities;

    /// Opens a new connection to the broker under test. Each call is a separate
    /// connection (exclusive queues belong to one of them).
    async fn connect(&self) -> Arc<dyn Transport>;

    /// Lets the broker finish routing and delivering what was published so far. The
    /// in-memory broker yields to the runtime; a real broker waits a short real time.
    async fn settle(&self);

    /// Lets `duration` of broker time pass, for `x-expires`. The in-memory broker
    /// advances tokio's paused clock; a real broker sleeps.
    async fn advance(&self, duration: Duration);

    /// How long to watch for a message that must not arrive.
    fn quiet_period(&self) -> Duration;

    /// How long to wait for a message that must arrive.
    fn receive_timeout(&self) -> Duration;

    /// The bound on one whole case, cleanup not included; a case still running then
    /// fails as hung. Defaults to 30 seconds.
    fn case_timeout(&self) -> Duration {
        Duration::from_secs(30)
    }

    /// Run smaller versions of the heavy cases (fewer messages, fewer random topic
    /// rounds). Defaults to whether `NAMEKO_CONFORMANCE_SHORT` is set.
    fn short(&self) -> bool {
        std::env::var_os("NAMEKO_CONFORMANCE_SHORT").is_some()
    }

    /// The user name connections authenticate as, if known. RabbitMQ refuses a
    /// `user-id` property that differs from it, so the round-trip case sets `user_id`
    /// only when this is `Some`. Defaults to `None`.
    fn broker_user(&self) -> Option<String> {
        None
    }
}

/// Runs one case when it is selected by the filter: skipped by its requirement, or run
/// bounded and cleaned up.
macro_rules! case {
    ($runner:expr, $name:ident, $requires:expr) => {
        case!($runner, $name, $name, $requires)
    };
    ($runner:expr, $module:ident :: $name:ident, $requires:expr) => {
        if $runner.selected(stringify!($name)) {
            if let Some(cx) = $runner.begin(stringify!($name), $requires) {
                let future = $module::$name(&cx);
                $runner.finish(stringify!($name), &cx, future).await;
            }
        }
    };
}

/// Runs every conformance case against the backend `harness` opens connections to.
///
/// Cases run one after another, each bounded by [`Harness::case_timeout`] and cleaned
/// up afterwards. Cases whose requirements the backend's [`Capabilities`] do not meet are
/// skipped, and the report says so. A summary is printed; if any case failed, this
/// panics at the end with one report naming each failed case and why.
///
/// The cases: round trip of body, every property and every header type; the default,
/// direct and fanout exchanges; topic wildcards (a table of RabbitMQ cases and random
/// patterns checked against [`reference_topic_match`]); one copy for overlapping topic
/// bindings; competing consumers; FIFO; ack; nack and reject with and without requeue;
/// prefetch; closing, dropping and cancelling consumers; buffering before consume;
/// mandatory returns; confirm outcomes; publishing to a missing exchange; concurrent
/// publishers; exclusive consumers and queues; auto-delete; `x-expires`; passive
/// declarations; conflicting redeclarations; deleting exchanges and queues; closing a
/// connection while consuming and with unsettled deliveries; and, for backends with
/// delivery policies, per-message and per-queue TTL, dead-lettering with `x-death`
/// (expired, rejected, max length), the headers-exchange backoff round trip of
/// nameko-amqp-retry, `x-max-length` with `drop-head` and `reject-publish`,
/// `x-max-priority`, and exchange-to-exchange bindings.
///
/// # Panics
///
/// When at least one case failed, with the report.
pub async fn run_transport_suite<H: Harness>(harness: &H) {
    let mut runner = Runner::new(harness);
    let r = &mut runner;

    case!(
        r,
        properties::roundtrip_body_and_properties,
        Requires::Nothing
    );

    case!(
        r,
        routing::default_exchange_routes_by_queue_name,
        Requires::Nothing
    );
    case!(
        r,
        routing::direct_exchange_routes_by_exact_key,
        Requires::Nothing
    );
    case!(
        r,
        routing::fanout_copies_to_every_bound_queue,
        Requires::Nothing
    );
    case!(r, routing::topic_wildcards_table, Requires::Nothing);
    case!(r, routing::topic_wildcards_random, Requires::Nothing);
    case!(
        r,
        routing::topic_overlapping_bindings_deliver_once,
        Requires::Nothing
    );

    case!(
        r,
        delivery::competing_consumers_share_each_message_once,
        Requires::Nothing
    );
    case!(
        r,
        delivery::fifo_with_one_consumer,
        Requires::OrderedPerQueue
    );
    case!(r, delivery::ack_removes_message, Requires::Nothing);
    case!(
        r,
        delivery::nack_requeue_redelivers,
        Requires::OrderedPerQueue
    );
    case!(
        r,
        delivery::reject_requeue_redelivers,
        Requires::OrderedPerQueue
    );
    case!(r, delivery::nack_without_requeue_drops, Requires::Nothing);
    case!(r, delivery::reject_without_requeue_drops, Requires::Nothing);
    case!(
        r,
        delivery::prefetch_limits_unsettled,
        Requires::OrderedPerQueue
    );
    case!(
        r,
        delivery::closing_consumer_requeues_unsettled,
        Requires::Nothing
    );
    case!(
        r,
        delivery::dropping_consumer_requeues_unsettled,
        Requires::Nothing
    );
    case!(
        r,
        delivery::cancel_stops_deliveries_but_keeps_settlement,
        Requires::Nothing
    );
    case!(
        r,
        delivery::messages_published_before_consume_are_buffered,
        Requires::Nothing
    );
    case!(
        r,
        delivery::exclusive_consumer_locks_queue,
        Requires::Nothing
    );

    case!(
        r,
        publish::mandatory_unroutable_is_returned,
        Requires::MandatoryReturns
    );
    case!(r, publish::publish_confirm_outcomes, Requires::Nothing);
    case!(
        r,
        publish::publish_to_missing_exchange_is_not_found,
        Requires::Nothing
    );
    case!(
        r,
        publish::concurrent_publishers_lose_nothing,
        Requires::Nothing
    );

    case!(
        r,
        lifecycle::exclusive_queue_is_owned_by_its_connection,
        Requires::ExclusiveQueues
    );
    case!(
        r,
        lifecycle::auto_delete_queue_goes_with_last_consumer,
        Requires::Nothing
    );
    case!(
        r,
        lifecycle::expires_removes_unused_queue,
        Requires::QueueExpiry
    );
    case!(
        r,
        lifecycle::passive_declare_of_missing_is_not_found,
        Requires::Nothing
    );
    case!(
        r,
        lifecycle::redeclare_same_ok_conflicting_fails,
        Requires::Nothing
    );
    case!(r, lifecycle::delete_exchange_removes_it, Requires::Nothing);
    case!(
        r,
        lifecycle::close_while_consuming_ends_stream,
        Requires::Nothing
    );
    case!(
        r,
        lifecycle::closing_connection_requeues_unsettled,
        Requires::Nothing
    );
    case!(
        r,
        lifecycle::delete_queue_ends_its_consumers,
        Requires::Nothing
    );

    case!(
        r,
        policies::per_message_ttl_dead_letters_expired,
        Requires::DeliveryPolicies
    );
    case!(
        r,
        policies::queue_ttl_drops_expired,
        Requires::DeliveryPolicies
    );
    case!(
        r,
        policies::rejected_is_dead_lettered,
        Requires::DeliveryPolicies
    );
    case!(
        r,
        policies::acked_is_not_dead_lettered,
        Requires::DeliveryPolicies
    );
    case!(
        r,
        policies::backoff_round_trips_count_in_x_death,
        Requires::DeliveryPolicies
    );
    case!(
        r,
        policies::max_length_drops_head_or_rejects_publish,
        Requires::DeliveryPolicies
    );
    case!(
        r,
        policies::priority_overtakes_waiting_messages,
        Requires::DeliveryPolicies
    );
    case!(
        r,
        policies::exchange_to_exchange_binding_routes_once,
        Requires::DeliveryPolicies
    );

    runner.conclude();
}
