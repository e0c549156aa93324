//! A key's record as one entry works on it, and the only code that writes
//! records and index entries.
//!
//! A line lives in up to three places (its record, one holder-index entry
//! per holder, a dirty-index entry while dirty), so commands change only the
//! loaded [`Record`] and [`Loaded::save`] writes the difference: the record
//! if it changed, the holder-index entries of nodes that came and went, and
//! the dirty-index entry if dirtiness flipped. Which nodes were dropped is
//! that same difference, so no command can forget to report one.

use super::keys;
use super::records::Record;
use super::{Applied, CacheOutcome, NodeId};
use crate::store::Store;

/// A key's record as the store had it, and as the entry has changed it.
pub(super) struct Loaded<'k> {
    /// The cache key.
    key: &'k str,
    /// The record as stored (`None`: absent or undecodable).
    before: Option<Record>,
    /// The record as the command leaves it.
    pub(super) record: Record,
}

impl<'k> Loaded<'k> {
    /// `key`'s record, `None` if it is absent (or does not decode, which
    /// counts as the same).
    pub(super) fn existing(store: &dyn Store, key: &'k str) -> Option<Loaded<'k>> {
        let record = Record::decode(&store.get(&keys::record(key))?)?;
        Some(Loaded { key, before: Some(record.clone()), record })
    }

    /// `key`'s record if it exists and is at `version`; otherwise the
    /// command's answer: `NotFound`, or `Stale` with the current version.
    pub(super) fn at_version(store: &dyn Store, key: &'k str, version: u64) -> Result<Loaded<'k>, CacheOutcome> {
        let loaded = Loaded::existing(store, key).ok_or(CacheOutcome::NotFound)?;
        match loaded.record.version {
            current if current == version => Ok(loaded),
            current => Err(CacheOutcome::Stale { version: current }),
        }
    }

    /// `key`'s record, or an empty one to fill in if it does not exist.
    pub(super) fn or_new(store: &dyn Store, key: &'k str) -> Loaded<'k> {
        Loaded::existing(store, key).unwrap_or(Loaded { key, before: None, record: Record::default() })
    }

    /// Writes what the command changed and describes the result.
    pub(super) fn save(self, store: &mut dyn Store) -> Applied {
        let dropped = self.dropped();
        let before = self.before.as_ref();
        if before != Some(&self.record) {
            store.put(&keys::record(self.key), self.record.encode());
            for &node in &dropped {
                store.delete(&keys::holder(node, self.key));
            }
            let held_before = |node| before.is_some_and(|b| b.holders.contains_key(node));
            for node in self.record.holders.keys().filter(|node| !held_before(node)) {
                store.put(&keys::holder(*node, self.key), Vec::new());
            }
            let dirty_before = before.is_some_and(|b| b.dirty.is_some());
            match (dirty_before, self.record.dirty.is_some()) {
                (false, true) => store.put(&keys::dirty(self.key), Vec::new()),
                (true, false) => store.delete(&keys::dirty(self.key)),
                _ => {}
            }
        }
        Applied {
            key: self.key.to_string(),
            version: self.record.version,
            dirty: self.record.dirty.is_some(),
            holders: self.record.holder_list(),
            dropped,
        }
    }

    /// Deletes the record as stored, with its index entries; describes it
    /// as gone: no holders, not dirty, every former holder dropped.
    pub(super) fn remove(self, store: &mut dyn Store) -> Applied {
        let before = self.before.unwrap_or_default();
        store.delete(&keys::record(self.key));
        for &node in before.holders.keys() {
            store.delete(&keys::holder(node, self.key));
        }
        if before.dirty.is_some() {
            store.delete(&keys::dirty(self.key));
        }
        Applied {
            key: self.key.to_string(),
            version: before.version,
            dirty: false,
            holders: Vec::new(),
            dropped: before.holders.into_keys().collect(),
        }
    }

    /// The nodes that held the line before and do not now, sorted.
    fn dropped(&self) -> Vec<NodeId> {
        let Some(before) = &self.before else { return Vec::new() };
        before.holders.keys().filter(|node| !self.record.holders.contains_key(node)).copied().collect()
    }
}

/// Deletes an index entry that points at nothing valid.
pub(super) fn drop_stale(store: &mut dyn Store, index_key: &[u8]) {
    store.delete(index_key);
}
