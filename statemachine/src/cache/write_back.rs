//! `write_back`: the line's dirty value reached the backing memory.

use super::keys;
use super::records::Memory;
use super::table::Loaded;
use super::{CacheOutcome, Mesi};
use crate::event::Event;
use crate::store::Store;

/// Marks `key` at `version` clean: if it is dirty, the value is stored as
/// the embedded backing memory's (when `embedded`: the cluster's own store
/// is the backing memory), the dirty value is dropped, an M holder becomes
/// E, and `CacheWrittenBack` is emitted. A clean line changes nothing.
/// `NotFound` for an unknown key, `Stale` if `version` is not the current
/// one (a newer put's value is still to be written).
pub(crate) fn write_back(
    store: &mut dyn Store,
    key: &str,
    version: u64,
    embedded: bool,
    events: &mut Vec<Event>,
) -> CacheOutcome {
    let mut loaded = match Loaded::at_version(&*store, key, version) {
        Ok(loaded) => loaded,
        Err(outcome) => return outcome,
    };
    if let Some(value) = loaded.record.dirty.take() {
        if embedded {
            store.put(&keys::memory(key), Memory { version, value }.encode());
        }
        for state in loaded.record.holders.values_mut().filter(|state| **state == Mesi::M) {
            *state = Mesi::E;
        }
        events.push(Event::CacheWrittenBack { key: key.to_string(), version });
    }
    CacheOutcome::Applied(loaded.save(store))
}
