//! The broker's timer for message TTL: one task per broker, sleeping on tokio's clock
//! (so a paused clock drives it) until the earliest queue head expires, started when a
//! message that can expire is first queued.

use std::sync::{Arc, Weak};

use tokio::sync::Notify;

use crate::broker::Shared;

/// Makes sure the timer task runs (on the current runtime, if there is one) and tells
/// it that the earliest deadline moved.
pub(crate) fn wake(shared: &Arc<Shared>) {
    {
        let mut task = shared.ttl_task.lock();
        let running = task.as_ref().is_some_and(|t| !t.is_finished());
        if !running && let Ok(handle) = tokio::runtime::Handle::try_current() {
            let weak = Arc::downgrade(shared);
            let notify = Arc::clone(&shared.ttl_notify);
            *task = Some(handle.spawn(run(weak, notify)));
        }
    }
    shared.ttl_notify.notify_one();
}

async fn run(shared: Weak<Shared>, notify: Arc<Notify>) {
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let next = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            shared.with(crate::state::State::expire_messages)
        };
        match next {
            Some(at) => {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    () = &mut notified => {}
                }
            }
            None => notified.await,
        }
    }
}
