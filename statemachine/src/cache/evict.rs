//! `evict`: a node dropped its copy (LRU eviction).

use super::table::Loaded;
use super::{CacheOutcome, NodeId};
use crate::store::Store;

/// Removes `node` from `key`'s holders if it is one (`dropped` says whether
/// it was). `dirty` is untouched: the server writes an M line back before
/// evicting it. `NotFound` for an unknown key, `Stale` if `version` is not
/// the current one (the node's copy was already dropped by a newer put).
pub(crate) fn evict(store: &mut dyn Store, node: NodeId, key: &str, version: u64) -> CacheOutcome {
    match Loaded::at_version(&*store, key, version) {
        Ok(mut loaded) => {
            loaded.record.holders.remove(&node);
            CacheOutcome::Applied(loaded.save(store))
        }
        Err(outcome) => outcome,
    }
}
