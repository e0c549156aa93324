//! `delete`: the key is gone from every cache and from the backing memory.

use super::keys;
use super::table::Loaded;
use super::{CacheOutcome, InvalidationReason};
use crate::event::Event;
use crate::store::Store;

/// Removes `key`'s record, its dirty value, its index entries and its
/// embedded memory value; answers the deleted version with every former
/// holder dropped, and emits `CacheInvalidated { reason: Delete }`.
/// `NotFound` for an unknown key (its memory value is removed all the same:
/// only a damaged store has one without a record).
pub(crate) fn delete(store: &mut dyn Store, key: &str, events: &mut Vec<Event>) -> CacheOutcome {
    let loaded = Loaded::existing(&*store, key);
    store.delete(&keys::memory(key));
    let Some(loaded) = loaded else { return CacheOutcome::NotFound };
    let applied = loaded.remove(store);
    events.push(Event::CacheInvalidated {
        key: key.to_string(),
        version: applied.version,
        nodes: applied.dropped.clone(),
        reason: InvalidationReason::Delete,
    });
    CacheOutcome::Applied(applied)
}
