//! `put`: a node writes a new value; it alone holds the line, in M.

use super::table::Loaded;
use super::{CacheDirectory, CacheOutcome, InvalidationReason, Mesi, NodeId};
use crate::event::Event;
use crate::store::Store;

/// Gives `key` the directory's next version and `value` (compact JSON text)
/// as its dirty value; every holder but `node` is dropped and `node` holds
/// the line in M. Emits `CacheInvalidated { reason: Put }` even when nobody
/// was dropped: subscribers learn of every new version.
pub(crate) fn put(
    directory: &mut CacheDirectory,
    store: &mut dyn Store,
    node: NodeId,
    key: &str,
    value: &str,
    events: &mut Vec<Event>,
) -> CacheOutcome {
    // The counter moves before the store is read, so it moves identically
    // when the store discards writes (replay).
    directory.last_version = directory.last_version.saturating_add(1);
    let mut loaded = Loaded::or_new(&*store, key);
    let record = &mut loaded.record;
    record.version = directory.last_version;
    record.dirty = Some(value.to_string());
    record.holders.clear();
    record.holders.insert(node, Mesi::M);
    let applied = loaded.save(store);
    events.push(Event::CacheInvalidated {
        key: key.to_string(),
        version: applied.version,
        nodes: applied.dropped.clone(),
        reason: InvalidationReason::Put,
    });
    CacheOutcome::Applied(applied)
}
