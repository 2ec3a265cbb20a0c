//! Recycled message copies: what keeps the broker's hot path free of allocations.
//!
//! A queue keeps a copy of every message it delivers until the delivery is settled, to
//! requeue or dead-letter it. When nothing else shares the message (one queue, no
//! publish log), the consumer gets the published message itself and the queue keeps a
//! copy made into a recycled one of the same queue, whose strings already have room:
//! consecutive messages of a queue have the same shape (an RPC request queue's carry a
//! reply-to and headers, a reply queue's do not), so the copy allocates nothing. An ack
//! gives the copy back. The `Arc` the published message arrived in is recycled too, as
//! an empty shell the next publish moves its message into.

use std::sync::Arc;

use bytes::Bytes;
use nameko_transport::{Message, Properties};

/// Most recycled copies a queue keeps (about a prefetch window's worth).
const MAX_SPARE_COPIES: usize = 64;

/// Most empty shells the broker keeps.
const MAX_SHELLS: usize = 256;

/// A message that owns nothing on the heap.
fn empty() -> Message {
    Message::new(Bytes::new(), Properties::default())
}

/// Copies of settled deliveries of one queue, ready to hold the next.
#[derive(Debug, Default)]
pub(crate) struct SpareCopies {
    copies: Vec<Arc<Message>>,
}

impl SpareCopies {
    /// Takes back the copy a settled delivery kept, unless something else shares it.
    pub(crate) fn give_back(&mut self, mut copy: Arc<Message>) {
        if self.copies.len() < MAX_SPARE_COPIES && Arc::get_mut(&mut copy).is_some() {
            self.copies.push(copy);
        }
    }

    /// The message to hand to a consumer out of `queued`, which keeps a copy of it
    /// (made into a recycled one). When the message is shared (several queues, the
    /// publish log), the consumer gets a copy and `queued` keeps the shared one. A shell
    /// freed on the way goes to `shells`.
    pub(crate) fn deliver(&mut self, queued: &mut Arc<Message>, shells: &mut Shells) -> Message {
        if Arc::get_mut(queued).is_none() {
            return Message::clone(queued);
        }
        let mut kept = self.copies.pop().unwrap_or_else(|| Arc::new(empty()));
        let mut original = match Arc::get_mut(&mut kept) {
            Some(copy) => {
                copy.clone_from(&**queued);
                std::mem::replace(queued, kept)
            }
            // Never: spares are unshared. Keep the original and hand out a copy.
            None => return Message::clone(queued),
        };
        match Arc::get_mut(&mut original) {
            Some(message) => {
                let message = std::mem::replace(message, empty());
                shells.give_back(original);
                message
            }
            None => Message::clone(&original),
        }
    }
}

/// Empty `Arc<Message>`s, for publishes to move their message into.
#[derive(Debug, Default)]
pub(crate) struct Shells {
    shells: Vec<Arc<Message>>,
}

impl Shells {
    fn give_back(&mut self, shell: Arc<Message>) {
        if self.shells.len() < MAX_SHELLS {
            self.shells.push(shell);
        }
    }

    /// `message` in an `Arc`, a recycled one when there is one.
    pub(crate) fn wrap(&mut self, message: Message) -> Arc<Message> {
        if let Some(mut shell) = self.shells.pop()
            && let Some(slot) = Arc::get_mut(&mut shell)
        {
            *slot = message;
            return shell;
        }
        Arc::new(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nameko_transport::FieldTable;

    fn request(n: u32) -> Message {
        Message::new(
            format!("body {n}"),
            Properties::json()
                .with_correlation_id(format!("cid-{n}"))
                .with_reply_to("reply")
                .with_headers(FieldTable::new().with("n", n)),
        )
    }

    #[test]
    fn an_unshared_message_is_handed_out_and_a_copy_kept() {
        let mut spares = SpareCopies::default();
        let mut shells = Shells::default();
        for n in 0..3 {
            let mut queued = shells.wrap(request(n));
            let delivered = spares.deliver(&mut queued, &mut shells);
            assert_eq!(delivered, request(n));
            assert_eq!(*queued, request(n));
            spares.give_back(queued);
        }
        assert_eq!(spares.copies.len(), 1);
        assert_eq!(shells.shells.len(), 1);
    }

    #[test]
    fn a_shared_message_stays_shared() {
        let mut spares = SpareCopies::default();
        let mut shells = Shells::default();
        let mut queued = Arc::new(request(1));
        let log = Arc::clone(&queued);
        let delivered = spares.deliver(&mut queued, &mut shells);
        assert_eq!(delivered, request(1));
        assert!(Arc::ptr_eq(&queued, &log));
        spares.give_back(queued);
        assert!(spares.copies.is_empty());
        assert!(shells.shells.is_empty());
    }
}
