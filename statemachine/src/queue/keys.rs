//! Store keys of the queue tables (layout in the module doc of `queue`).
//!
//! Queue names are escaped and terminated as `crate::codec` does for every
//! name in a key: encoded names sort as the names do and none is a prefix
//! of another, so a per-queue prefix scan never reaches a neighbour.
//! Integers are big-endian. Decoders return `None` for anything they did
//! not encode.

pub(super) use crate::codec::prefix_end;
use crate::codec::{push_name, take_name};

/// First byte of every queue key: the queue keyspace of the shared store.
const SPACE: u8 = b'q';
/// Table byte: queue meta, by name.
const META: u8 = b'm';
/// Table byte: message records, by queue and id.
const MESSAGE: u8 = b'g';
/// Table byte: the ready index, by queue and sequence number.
const READY: u8 = b'r';
/// Table byte: the timer index, by deadline, queue and id.
const TIMER: u8 = b't';

/// Bytes of an encoded message id.
pub(super) const ID_BYTES: usize = 12;

/// A message id: the produce's log index and the position in its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Id {
    /// Log index of the produce entry.
    pub(super) index: u64,
    /// Position in the produce's batch.
    pub(super) position: u32,
}

impl Id {
    /// Parses the text form; `None` if malformed.
    pub(super) fn parse(text: &str) -> Option<Id> {
        super::parse_message_id(text).map(|(index, position)| Id { index, position })
    }

    /// The text form, as clients see it.
    pub(super) fn text(self) -> String {
        super::message_id(self.index, self.position)
    }

    /// The 12-byte key form; sorts as (index, position).
    pub(super) fn bytes(self) -> [u8; ID_BYTES] {
        let mut bytes = [0; ID_BYTES];
        bytes[..8].copy_from_slice(&self.index.to_be_bytes());
        bytes[8..].copy_from_slice(&self.position.to_be_bytes());
        bytes
    }

    /// Decodes exactly [`ID_BYTES`] bytes.
    pub(super) fn from_bytes(bytes: &[u8]) -> Option<Id> {
        let (index, position) = (bytes.get(..8)?, bytes.get(8..)?);
        if position.len() != 4 {
            return None;
        }
        Some(Id {
            index: u64::from_be_bytes(index.try_into().ok()?),
            position: u32::from_be_bytes(position.try_into().ok()?),
        })
    }
}

/// `queue`'s meta record.
pub(super) fn meta(queue: &str) -> Vec<u8> {
    let mut key = vec![SPACE, META];
    push_name(&mut key, queue);
    key
}

/// The range of every meta record, by queue name.
pub(super) fn meta_range() -> (Vec<u8>, Vec<u8>) {
    (vec![SPACE, META], vec![SPACE, META + 1])
}

/// The queue name of a meta key.
pub(super) fn decode_meta(key: &[u8]) -> Option<String> {
    let (name, rest) = take_name(key.strip_prefix(&[SPACE, META])?)?;
    rest.is_empty().then_some(name)
}

/// The record of message `id` of `queue`.
pub(super) fn message(queue: &str, id: Id) -> Vec<u8> {
    let mut key = message_prefix(queue);
    key.extend_from_slice(&id.bytes());
    key
}

/// The start of every message key of `queue`.
pub(super) fn message_prefix(queue: &str) -> Vec<u8> {
    let mut key = vec![SPACE, MESSAGE];
    push_name(&mut key, queue);
    key
}

/// The (queue, id) of a message key.
pub(super) fn decode_message(key: &[u8]) -> Option<(String, Id)> {
    let (name, rest) = take_name(key.strip_prefix(&[SPACE, MESSAGE])?)?;
    Some((name, Id::from_bytes(rest)?))
}

/// The ready-index entry of sequence number `seq` of `queue`.
pub(super) fn ready(queue: &str, seq: u64) -> Vec<u8> {
    let mut key = ready_prefix(queue);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The start of every ready-index key of `queue`.
pub(super) fn ready_prefix(queue: &str) -> Vec<u8> {
    let mut key = vec![SPACE, READY];
    push_name(&mut key, queue);
    key
}

/// The (queue, seq) of a ready-index key.
pub(super) fn decode_ready(key: &[u8]) -> Option<(String, u64)> {
    let (name, rest) = take_name(key.strip_prefix(&[SPACE, READY])?)?;
    Some((name, u64::from_be_bytes(rest.try_into().ok()?)))
}

/// The timer of message `id` of `queue`, due at `deadline_ms`.
pub(super) fn timer(deadline_ms: u64, queue: &str, id: Id) -> Vec<u8> {
    let mut key = vec![SPACE, TIMER];
    key.extend_from_slice(&deadline_ms.to_be_bytes());
    push_name(&mut key, queue);
    key.extend_from_slice(&id.bytes());
    key
}

/// The range of every timer due at `now_ms` (deadline at or before it).
pub(super) fn timers_due(now_ms: u64) -> (Vec<u8>, Vec<u8>) {
    let start = vec![SPACE, TIMER];
    let end = match now_ms.checked_add(1) {
        Some(after) => [&start[..], &after.to_be_bytes()].concat(),
        None => vec![SPACE, TIMER + 1],
    };
    (start, end)
}

/// The range of every timer.
pub(super) fn timer_range() -> (Vec<u8>, Vec<u8>) {
    (vec![SPACE, TIMER], vec![SPACE, TIMER + 1])
}

/// The (deadline, queue, id) of a timer key.
pub(super) fn decode_timer(key: &[u8]) -> Option<(u64, String, Id)> {
    let deadline_ms = timer_deadline(key)?;
    let (name, rest) = take_name(key.get(2 + 8..)?)?;
    Some((deadline_ms, name, Id::from_bytes(rest)?))
}

/// The deadline of a timer key, whatever follows it.
pub(super) fn timer_deadline(key: &[u8]) -> Option<u64> {
    let rest = key.strip_prefix(&[SPACE, TIMER])?;
    Some(u64::from_be_bytes(rest.get(..8)?.try_into().ok()?))
}

/// The range of the whole queue keyspace (for the invariant check).
pub(super) fn space_range() -> (Vec<u8>, Vec<u8>) {
    (vec![SPACE], vec![SPACE + 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 8] = ["", "a", "a\0", "a\0b", "a/b", "ab", "b", "é/\u{1}"];

    #[test]
    fn names_round_trip_and_keep_their_order() {
        let mut encoded: Vec<Vec<u8>> = NAMES.iter().map(|n| meta(n)).collect();
        for (name, key) in NAMES.iter().zip(&encoded) {
            assert_eq!(decode_meta(key).as_deref(), Some(*name));
        }
        let before = encoded.clone();
        encoded.sort();
        assert_eq!(encoded, before, "NAMES is sorted, so must their keys be");
    }

    #[test]
    fn no_queue_prefix_reaches_another_queue() {
        let id = Id { index: 1, position: 2 };
        for a in NAMES {
            for b in NAMES.iter().filter(|b| **b != a) {
                let prefix = message_prefix(a);
                let other = message(b, id);
                assert!(!(other >= prefix && other < prefix_end(&prefix)), "{a:?} reaches {b:?}");
            }
        }
    }

    #[test]
    fn keys_round_trip() {
        let id = Id { index: u64::MAX, position: 3 };
        assert_eq!(decode_message(&message("q\0/x", id)), Some(("q\0/x".into(), id)));
        assert_eq!(decode_ready(&ready("q", 9)), Some(("q".into(), 9)));
        assert_eq!(decode_timer(&timer(77, "q", id)), Some((77, "q".into(), id)));
        assert_eq!(Id::from_bytes(&id.bytes()), Some(id));
        assert_eq!(Id::parse(&id.text()), Some(id));
    }

    #[test]
    fn garbage_does_not_decode() {
        assert_eq!(decode_meta(b"qm\x00"), None);
        assert_eq!(decode_meta(b"qma\x00\x01x"), None);
        assert_eq!(decode_meta(b"qm\xff\x00\x01"), None, "not UTF-8");
        assert_eq!(decode_message(b"qga\x00\x01short"), None);
        assert_eq!(decode_timer(b"qt\x00"), None);
        assert_eq!(Id::from_bytes(&[0; 13]), None);
    }

    #[test]
    fn due_range_includes_now_and_excludes_later() {
        let id = Id { index: 1, position: 0 };
        let (start, end) = timers_due(10);
        let at = |ms| timer(ms, "q", id);
        assert!(at(0) >= start && at(10) < end && at(11) >= end);
        let (_, end) = timers_due(u64::MAX);
        assert!(at(u64::MAX) < end);
        assert_eq!(prefix_end(&[1, 0xFF]), vec![2]);
    }
}
