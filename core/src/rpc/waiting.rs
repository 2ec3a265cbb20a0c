//! The calls waiting for their replies, by correlation id.
//!
//! Correlation ids nameko-rs makes are random UUIDs in their usual text form; those are
//! kept as numbers (no `String` per call, and a hash of one word instead of SipHash over
//! 36 bytes). Any other correlation id (given to [`ReplyListener::register`] by hand) is
//! kept as text.
//!
//! [`ReplyListener::register`]: super::ReplyListener::register

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

/// A correlation id: a UUID in its lowercase hyphenated form, or any other text.
#[derive(Clone)]
pub(crate) enum CorrelationId {
    Uuid { value: u128, text: [u8; 36] },
    Text(String),
}

impl CorrelationId {
    /// A UUID's correlation id.
    pub(crate) fn uuid(uuid: uuid::Uuid) -> Self {
        let mut text = [0; 36];
        uuid.hyphenated().encode_lower(&mut text);
        Self::Uuid {
            value: uuid.as_u128(),
            text,
        }
    }

    /// The correlation id of some text: a UUID when it is one in the form
    /// [`CorrelationId::uuid`] writes.
    pub(crate) fn from_string(text: String) -> Self {
        match uuid_key(&text) {
            Some(value) => Self::uuid(uuid::Uuid::from_u128(value)),
            None => Self::Text(text),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // ASCII by construction.
            Self::Uuid { text, .. } => std::str::from_utf8(text).unwrap_or_default(),
            Self::Text(text) => text,
        }
    }
}

impl fmt::Debug for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// The number of a correlation id that is a UUID in lowercase hyphenated form: the only
/// text that gives that number back when written again.
fn uuid_key(text: &str) -> Option<u128> {
    if text.len() != 36 || text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    uuid::Uuid::try_parse(text).ok().map(|uuid| uuid.as_u128())
}

/// Hashes the random UUIDs that key waiting calls: their bits are random already.
#[derive(Default)]
struct UuidHasher(u64);

impl Hasher for UuidHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by `u128` keys; FNV-1a for completeness.
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    #[allow(clippy::cast_possible_truncation)]
    fn write_u128(&mut self, value: u128) {
        self.0 ^= (value as u64) ^ ((value >> 64) as u64);
    }
}

/// The calls waiting for a reply, each with what its reply is sent on.
pub(crate) struct Waiting<W> {
    by_uuid: HashMap<u128, W, BuildHasherDefault<UuidHasher>>,
    by_text: HashMap<String, W>,
}

impl<W> Default for Waiting<W> {
    fn default() -> Self {
        Self {
            by_uuid: HashMap::default(),
            by_text: HashMap::new(),
        }
    }
}

impl<W> fmt::Debug for Waiting<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiting").field("len", &self.len()).finish()
    }
}

impl<W> Waiting<W> {
    pub(crate) fn insert(&mut self, id: CorrelationId, waiter: W) {
        match id {
            CorrelationId::Uuid { value, .. } => {
                self.by_uuid.insert(value, waiter);
            }
            CorrelationId::Text(text) => {
                self.by_text.insert(text, waiter);
            }
        }
    }

    /// Takes the call of a correlation id, as a reply carries it.
    pub(crate) fn remove(&mut self, correlation_id: &str) -> Option<W> {
        match uuid_key(correlation_id) {
            Some(value) => self.by_uuid.remove(&value),
            None => self.by_text.remove(correlation_id),
        }
    }

    /// Takes the call of a correlation id.
    pub(crate) fn remove_id(&mut self, id: &CorrelationId) -> Option<W> {
        match id {
            CorrelationId::Uuid { value, .. } => self.by_uuid.remove(value),
            CorrelationId::Text(text) => self.by_text.remove(text),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_uuid.len() + self.by_text.len()
    }

    pub(crate) fn ids(&self) -> Vec<String> {
        self.by_uuid
            .keys()
            .map(|&value| uuid::Uuid::from_u128(value).hyphenated().to_string())
            .chain(self.by_text.keys().cloned())
            .collect()
    }

    /// Takes every call, with its correlation id.
    pub(crate) fn drain(&mut self) -> Vec<(String, W)> {
        self.by_uuid
            .drain()
            .map(|(value, waiter)| {
                let id = uuid::Uuid::from_u128(value).hyphenated().to_string();
                (id, waiter)
            })
            .chain(self.by_text.drain())
            .collect()
    }

    pub(crate) fn clear(&mut self) {
        self.by_uuid.clear();
        self.by_text.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_and_other_ids_are_found_by_their_text() {
        let mut waiting = Waiting::default();
        let uuid = uuid::Uuid::new_v4();
        let text = uuid.hyphenated().to_string();
        waiting.insert(CorrelationId::uuid(uuid), 1);
        waiting.insert(CorrelationId::from_string("custom-1".to_owned()), 2);
        waiting.insert(CorrelationId::from_string(text.to_uppercase()), 3);
        assert_eq!(CorrelationId::uuid(uuid).as_str(), text);
        assert!(matches!(
            CorrelationId::from_string(text.clone()),
            CorrelationId::Uuid { .. }
        ));
        assert_eq!(waiting.len(), 3);
        let mut ids = waiting.ids();
        ids.sort();
        let mut expected = vec![text.clone(), "custom-1".to_owned(), text.to_uppercase()];
        expected.sort();
        assert_eq!(ids, expected);
        assert_eq!(waiting.remove(&text.to_uppercase()), Some(3));
        assert_eq!(waiting.remove(&text.to_uppercase()), None);
        assert_eq!(waiting.remove(&text), Some(1));
        assert_eq!(waiting.remove(&text), None);
        assert_eq!(waiting.remove(&text.replace('-', "")), None);
        assert_eq!(
            waiting.remove_id(&CorrelationId::from_string("custom-1".to_owned())),
            Some(2)
        );
        assert_eq!(waiting.len(), 0);
    }

    #[test]
    fn draining_gives_every_id_back_as_text() {
        let mut waiting = Waiting::default();
        let uuid = uuid::Uuid::new_v4();
        waiting.insert(CorrelationId::uuid(uuid), ());
        waiting.insert(CorrelationId::from_string("x".to_owned()), ());
        let mut ids: Vec<String> = waiting.drain().into_iter().map(|(id, ())| id).collect();
        ids.sort();
        let mut expected = vec![uuid.hyphenated().to_string(), "x".to_owned()];
        expected.sort();
        assert_eq!(ids, expected);
        assert_eq!(waiting.len(), 0);
    }
}
