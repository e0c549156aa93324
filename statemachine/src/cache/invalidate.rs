//! `invalidate`: every node drops its copy; the value stays.

use super::table::Loaded;
use super::{CacheOutcome, InvalidationReason};
use crate::event::Event;
use crate::store::Store;

/// Drops every holder of `key`. `dirty` is untouched: the server writes the
/// line back first, and a value put since then stays dirty until the
/// flusher writes it, so it is never lost. Always emits
/// `CacheInvalidated { reason: Invalidate }`. `NotFound` for an unknown key.
pub(crate) fn invalidate(store: &mut dyn Store, key: &str, events: &mut Vec<Event>) -> CacheOutcome {
    let Some(mut loaded) = Loaded::existing(&*store, key) else { return CacheOutcome::NotFound };
    loaded.record.holders.clear();
    let applied = loaded.save(store);
    events.push(Event::CacheInvalidated {
        key: key.to_string(),
        version: applied.version,
        nodes: applied.dropped.clone(),
        reason: InvalidationReason::Invalidate,
    });
    CacheOutcome::Applied(applied)
}
