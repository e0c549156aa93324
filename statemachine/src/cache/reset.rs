//! `reset`: a node starts over with an empty cache and holds nothing.

use super::table::{self, Loaded};
use super::{keys, CacheOutcome, NodeId, RESET_PER_ENTRY_MAX};
use crate::codec::prefix_end;
use crate::store::Store;

/// Removes `node` from the holders of every line it holds, found through
/// the holder index, at most [`RESET_PER_ENTRY_MAX`] index entries per
/// entry. Answers how many lines it really stopped holding: an index entry
/// whose record is missing or does not list `node` is stale and is dropped
/// without counting. Emits nothing: only `node`'s own copies change.
pub(crate) fn reset(store: &mut dyn Store, node: NodeId) -> CacheOutcome {
    let prefix = keys::holder_prefix(node);
    let held = store.scan(&prefix, &prefix_end(&prefix), RESET_PER_ENTRY_MAX);
    let mut dropped = 0;
    for (index_key, _) in held {
        let key = keys::decode_holder(&index_key).map(|(_, key)| key);
        let loaded = key.as_deref().and_then(|key| Loaded::existing(&*store, key));
        match loaded {
            Some(mut loaded) if loaded.record.holders.contains_key(&node) => {
                loaded.record.holders.remove(&node);
                loaded.save(store);
                dropped += 1;
            }
            _ => table::drop_stale(store, &index_key),
        }
    }
    CacheOutcome::Reset { dropped }
}
