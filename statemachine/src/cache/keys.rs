//! Store keys of the cache directory (layout in the module doc of `cache`).
//!
//! Cache keys are escaped and terminated as `crate::codec` does for every
//! name in a key: encoded keys sort as the keys do and none is a prefix of
//! another. Node ids are big-endian, so one node's holder-index entries are
//! one range. Decoders return `None` for anything they did not encode.

use super::NodeId;
use crate::codec::{push_name, take_name};

/// First byte of every cache key: the cache keyspace of the shared store.
const SPACE: u8 = b'c';
/// Table byte: directory records, by key.
const RECORD: u8 = b'r';
/// Table byte: the holder index, by node and key.
const HOLDER: u8 = b'h';
/// Table byte: the dirty index, by key.
const DIRTY: u8 = b'd';
/// Table byte: embedded backing-memory values, by key.
const MEMORY: u8 = b'm';

/// `key` under `table`.
fn named(table: u8, key: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(4 + key.len());
    bytes.extend_from_slice(&[SPACE, table]);
    push_name(&mut bytes, key);
    bytes
}

/// The key of a `named` store key of `table`.
fn decode_named(table: u8, bytes: &[u8]) -> Option<String> {
    let (key, rest) = take_name(bytes.strip_prefix(&[SPACE, table])?)?;
    rest.is_empty().then_some(key)
}

/// `key`'s directory record.
pub(super) fn record(key: &str) -> Vec<u8> {
    named(RECORD, key)
}

/// The key of a record key.
pub(super) fn decode_record(bytes: &[u8]) -> Option<String> {
    decode_named(RECORD, bytes)
}

/// `key`'s entry in the dirty index.
pub(super) fn dirty(key: &str) -> Vec<u8> {
    named(DIRTY, key)
}

/// The range of the whole dirty index, by key.
pub(super) fn dirty_range() -> (Vec<u8>, Vec<u8>) {
    (vec![SPACE, DIRTY], vec![SPACE, DIRTY + 1])
}

/// The key of a dirty-index key.
pub(super) fn decode_dirty(bytes: &[u8]) -> Option<String> {
    decode_named(DIRTY, bytes)
}

/// `key`'s embedded memory value.
pub(super) fn memory(key: &str) -> Vec<u8> {
    named(MEMORY, key)
}

/// The key of a memory-value key.
pub(super) fn decode_memory(bytes: &[u8]) -> Option<String> {
    decode_named(MEMORY, bytes)
}

/// The holder-index entry saying `node` holds `key`.
pub(super) fn holder(node: NodeId, key: &str) -> Vec<u8> {
    let mut bytes = holder_prefix(node);
    push_name(&mut bytes, key);
    bytes
}

/// The start of every holder-index key of `node`.
pub(super) fn holder_prefix(node: NodeId) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(12);
    bytes.extend_from_slice(&[SPACE, HOLDER]);
    bytes.extend_from_slice(&node.to_be_bytes());
    bytes
}

/// The (node, key) of a holder-index key.
pub(super) fn decode_holder(bytes: &[u8]) -> Option<(NodeId, String)> {
    let rest = bytes.strip_prefix(&[SPACE, HOLDER])?;
    let node = NodeId::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let (key, rest) = take_name(rest.get(8..)?)?;
    rest.is_empty().then_some((node, key))
}

/// The range of the whole cache keyspace (for the invariant check).
pub(super) fn space_range() -> (Vec<u8>, Vec<u8>) {
    (vec![SPACE], vec![SPACE + 1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::prefix_end;

    #[test]
    fn keys_round_trip() {
        for key in ["k", "a\0b", "é/\u{1}", ""] {
            assert_eq!(decode_record(&record(key)).as_deref(), Some(key));
            assert_eq!(decode_dirty(&dirty(key)).as_deref(), Some(key));
            assert_eq!(decode_memory(&memory(key)).as_deref(), Some(key));
            assert_eq!(decode_holder(&holder(u64::MAX, key)), Some((u64::MAX, key.to_string())));
        }
    }

    #[test]
    fn tables_do_not_decode_as_each_other() {
        assert_eq!(decode_record(&dirty("k")), None);
        assert_eq!(decode_dirty(&memory("k")), None);
        assert_eq!(decode_memory(&record("k")), None);
        assert_eq!(decode_holder(&record("k")), None);
    }

    #[test]
    fn one_nodes_holder_range_holds_only_its_keys() {
        let prefix = holder_prefix(7);
        let end = prefix_end(&prefix);
        for (node, inside) in [(6, false), (7, true), (8, false), (7 << 8, false)] {
            let key = holder(node, "k");
            assert_eq!(key >= prefix && key < end, inside, "node {node}");
        }
        let (start, end) = dirty_range();
        assert!(dirty("\u{10FFFF}") < end && dirty("") >= start);
    }

    #[test]
    fn garbage_does_not_decode() {
        assert_eq!(decode_record(b"cr"), None);
        assert_eq!(decode_record(b"crk\x00\x01x"), None, "trailing bytes");
        assert_eq!(decode_record(b"cr\xff\x00\x01"), None, "not UTF-8");
        assert_eq!(decode_holder(b"ch\x00\x00\x00"), None);
        assert_eq!(decode_holder(b"ch\x00\x00\x00\x00\x00\x00\x00\x01k"), None, "unterminated");
    }
}
