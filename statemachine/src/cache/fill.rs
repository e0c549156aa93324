//! `fill`: a node read the line on a miss and now holds a copy.

use super::table::Loaded;
use super::{CacheOutcome, Mesi, NodeId};
use crate::store::Store;

/// Makes `node` a holder of `key` at `version`: E if it is the only holder,
/// else S, with every other M or E holder downgraded to S. A node that holds
/// the line already changes nothing. `dirty` is untouched: a line
/// downgraded from M stays dirty until written back. `NotFound` for an
/// unknown key, `Stale` if `version` is not the current one.
pub(crate) fn fill(store: &mut dyn Store, node: NodeId, key: &str, version: u64) -> CacheOutcome {
    let mut loaded = match Loaded::at_version(&*store, key, version) {
        Ok(loaded) => loaded,
        Err(outcome) => return outcome,
    };
    let holders = &mut loaded.record.holders;
    if !holders.contains_key(&node) {
        let state = if holders.is_empty() { Mesi::E } else { Mesi::S };
        for other in holders.values_mut() {
            *other = Mesi::S;
        }
        holders.insert(node, state);
    }
    CacheOutcome::Applied(loaded.save(store))
}
