//! Identifiers of broker objects, and a cheap hasher for maps keyed by them.

use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

/// Identifies one connection ([`MemoryTransport`](crate::MemoryTransport)) to a broker.
///
/// Ids are unique for the broker's lifetime and kept across reconnections, so a test
/// can find a connection in [`MemoryBroker::connections`](crate::MemoryBroker::connections)
/// and drop it with [`MemoryBroker::drop_connection`](crate::MemoryBroker::drop_connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub(crate) u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn-{}", self.0)
    }
}

/// Identifies a queue for as long as it exists; a queue deleted and declared again gets
/// a new id, so stale references never reach the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct QueueId(pub(crate) u64);

/// Identifies a consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ConsumerId(pub(crate) u64);

/// A hasher for maps keyed by the ids above: one multiply instead of SipHash.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Builds [`IdHasher`]s.
pub(crate) type IdBuild = BuildHasherDefault<IdHasher>;
