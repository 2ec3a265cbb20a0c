//! The built-in entrypoints, each written on the public [extension API](crate::extension)
//! as any other crate's would be:
//!
//! | attribute | entrypoint | |
//! |---|---|---|
//! | `#[rpc]` | [`Rpc`], with the shared [`RpcConsumer`] | nameko's `@rpc` |
//! | `#[event_handler(source, event_type, ...)]` | [`EventHandler`] | nameko's `@event_handler` |
//! | `#[timer(interval = ..., eager = ...)]` | [`Timer`] | nameko's `@timer` |
//! | `#[consume(queue = ..., ...)]` | [`Consume`] | nameko's `@consume` |
//! | `#[once(args...)]` | [`Once`] | nameko's `testing.services.once` |
//! | `#[dummy]` | [`Dummy`] | nameko's `testing.services.dummy` |
//!
//! [`ConsumerTask`] and [`DeliveryHandler`] are the consuming loop every queue entrypoint
//! shares; an entrypoint of another crate that consumes an AMQP queue can use them too.

mod consume;
mod consumer;
mod event_handler;
mod once;
mod queue;
mod rpc;
mod timer;

pub use consume::{Consume, ConsumeConfig};
pub use consumer::{BackgroundTask, ConsumerTask, DeliveryHandler, settle};
pub use event_handler::{
    EventHandler, EventHandlerConfig, HandlerType, handler_queue_name, handler_queue_options,
};
pub use once::{Dummy, Once};
pub use rpc::{Rpc, RpcConsumer};
pub use timer::Timer;
