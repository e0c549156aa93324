//! Read-only queries for the server: a key's line, its embedded memory
//! value, and paged lists of dirty keys and of a node's lines.

use super::keys;
use super::records::{Memory, Record};
use super::{Line, NodeId};
use crate::codec::{key_after, prefix_end};
use crate::store::Store;

/// `key`'s directory record; `None` if the key is not in the directory (or
/// its record does not decode). O(log n).
pub fn line(store: &dyn Store, key: &str) -> Option<Line> {
    Some(Record::decode(&store.get(&keys::record(key))?)?.line())
}

/// The embedded backing memory's value of `key` (written by an embedded
/// write-back) as (version, compact JSON text): what a get serves when no
/// node holds the line and it is not dirty. `None` if there is none (or it
/// does not decode). O(log n).
pub fn memory_value(store: &dyn Store, key: &str) -> Option<(u64, String)> {
    let memory = Memory::decode(&store.get(&keys::memory(key))?)?;
    Some((memory.version, memory.value))
}

/// Up to `limit` dirty keys in key order, strictly after `after` (from the
/// first with `None`): the flusher's work list, paged so one call stays
/// small however many keys are dirty. O(limit log n).
pub fn dirty_keys(store: &dyn Store, after: Option<&str>, limit: usize) -> Vec<String> {
    let (first, end) = keys::dirty_range();
    let start = after.map_or(first, |after| key_after(&keys::dirty(after)));
    page(store, start, &end, limit, keys::decode_dirty)
}

/// Up to `limit` keys whose line `node` holds, in key order, strictly
/// after `after` (from the first with `None`): what a node should hold,
/// and whether a reset left any. O(limit log n).
pub fn held_by(store: &dyn Store, node: NodeId, after: Option<&str>, limit: usize) -> Vec<String> {
    let prefix = keys::holder_prefix(node);
    let end = prefix_end(&prefix);
    let start = after.map_or(prefix, |after| key_after(&keys::holder(node, after)));
    page(store, start, &end, limit, |bytes| keys::decode_holder(bytes).map(|(_, key)| key))
}

/// Up to `limit` keys of the index range `start..end` that `decode`
/// accepts. Undecodable index keys are skipped and scanning goes on past
/// them, so garbage cannot cut a page short.
fn page(
    store: &dyn Store,
    mut start: Vec<u8>,
    end: &[u8],
    limit: usize,
    decode: impl Fn(&[u8]) -> Option<String>,
) -> Vec<String> {
    let mut found = Vec::new();
    while found.len() < limit {
        let wanted = limit - found.len();
        let entries = store.scan(&start, end, wanted);
        let exhausted = entries.len() < wanted;
        let Some((last, _)) = entries.last() else { break };
        start = key_after(last);
        found.extend(entries.iter().filter_map(|(key, _)| decode(key)));
        if exhausted {
            break;
        }
    }
    found
}
