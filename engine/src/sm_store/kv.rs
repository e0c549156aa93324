//! The state machine's store in sled, and the views of it the state
//! machine is given.
//!
//! Every key the state machine writes lives under [`STATE_PREFIX`]; the
//! engine's own keys (the applied log id, the membership) live under `m/`,
//! so the two can never collide. An apply batch buffers its writes in a
//! [`BatchStore`] (its own reads see them) and commits them with the applied
//! log id in one atomic sled batch: after a crash sled holds the state of
//! some applied index, never half an entry.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use dsync_statemachine::store::Store;

use crate::codec;
use crate::types::LogId;

use super::Membership;

/// Prefix of every state machine key in sled.
pub const STATE_PREFIX: &[u8] = b"s/";
/// Key of the last applied log id (bincode `Option<LogId>`).
pub const APPLIED_KEY: &[u8] = b"m/applied";
/// Key of the last applied membership (bincode).
pub const MEMBERSHIP_KEY: &[u8] = b"m/membership";

fn prefixed(key: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(STATE_PREFIX.len() + key.len());
    full.extend_from_slice(STATE_PREFIX);
    full.extend_from_slice(key);
    full
}

/// Reads `key` (unprefixed) from the tree.
fn tree_get(tree: &sled::Tree, key: &[u8]) -> sled::Result<Option<Vec<u8>>> {
    Ok(tree.get(prefixed(key))?.map(|v| v.to_vec()))
}

/// Up to `limit` tree entries with `start <= key < end` (unprefixed keys).
fn tree_scan(tree: &sled::Tree, start: &[u8], end: &[u8], limit: usize) -> sled::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    if start >= end {
        return Ok(Vec::new());
    }
    tree.range(prefixed(start)..prefixed(end))
        .take(limit)
        .map(|item| item.map(|(k, v)| (k[STATE_PREFIX.len()..].to_vec(), v.to_vec())))
        .collect()
}

/// One apply batch's view: sled plus the batch's own pending writes.
pub struct BatchStore<'a> {
    tree: &'a sled::Tree,
    /// Pending writes: `None` is a delete.
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// The first sled error met, by a read or a write; the batch then
    /// fails as a whole (a read that failed answered "absent", which must
    /// not be committed as if it were true).
    error: RefCell<Option<sled::Error>>,
}

impl<'a> BatchStore<'a> {
    /// An empty batch over `tree`.
    pub fn new(tree: &'a sled::Tree) -> BatchStore<'a> {
        BatchStore { tree, pending: BTreeMap::new(), error: RefCell::new(None) }
    }

    /// The value of `result`, or `T::default()` after recording its error.
    fn note<T: Default>(&self, result: sled::Result<T>) -> T {
        result.unwrap_or_else(|e| {
            self.error.borrow_mut().get_or_insert(e);
            T::default()
        })
    }

    /// Writes the batch and the applied id (and membership, if it changed)
    /// atomically, first recording pre-images for a snapshot being built.
    pub fn commit(
        self,
        applied: Option<LogId>,
        membership: Option<&Membership>,
        overlay: &SnapshotOverlay,
    ) -> io::Result<()> {
        if let Some(e) = self.error.into_inner() {
            return Err(io::Error::other(e));
        }
        let mut batch = sled::Batch::default();
        for (key, value) in &self.pending {
            match value {
                Some(value) => batch.insert(prefixed(key), value.as_slice()),
                None => batch.remove(prefixed(key)),
            }
        }
        batch.insert(APPLIED_KEY, codec::encode(&applied).map_err(io::Error::other)?);
        if let Some(membership) = membership {
            batch.insert(MEMBERSHIP_KEY, codec::encode(membership).map_err(io::Error::other)?);
        }
        overlay.before_write(self.tree, self.pending.keys())?;
        self.tree.apply_batch(batch).map_err(io::Error::other)
    }
}

impl Store for BatchStore<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.pending.get(key) {
            Some(value) => value.clone(),
            None => self.note(tree_get(self.tree, key)),
        }
    }

    fn put(&mut self, key: &[u8], value: Vec<u8>) {
        self.pending.insert(key.to_vec(), Some(value));
    }

    fn delete(&mut self, key: &[u8]) {
        self.pending.insert(key.to_vec(), None);
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        if start >= end {
            return Vec::new();
        }
        // Merge sled's range with the pending writes, which win. Deletes
        // in the batch can hide sled rows, so read enough sled rows to
        // still return `limit` live ones.
        let hidden = self.pending.range::<[u8], _>((Bound::Included(start), Bound::Excluded(end))).count();
        let stored = self.note(tree_scan(self.tree, start, end, limit.saturating_add(hidden)));
        let mut merged: BTreeMap<Vec<u8>, Option<Vec<u8>>> = stored.into_iter().map(|(k, v)| (k, Some(v))).collect();
        for (key, value) in self.pending.range::<[u8], _>((Bound::Included(start), Bound::Excluded(end))) {
            merged.insert(key.clone(), value.clone());
        }
        merged.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).take(limit).collect()
    }
}

/// A read-only view of the applied store, for reads outside Raft (stats).
/// Writes through it are dropped: it is only handed to code that reads.
#[derive(Clone)]
pub struct SledView {
    tree: sled::Tree,
}

impl SledView {
    /// A view of `tree`.
    pub fn new(tree: sled::Tree) -> SledView {
        SledView { tree }
    }
}

impl Store for SledView {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        tree_get(&self.tree, key).ok().flatten()
    }

    fn put(&mut self, _key: &[u8], _value: Vec<u8>) {
        debug_assert!(false, "SledView is read-only");
    }

    fn delete(&mut self, _key: &[u8]) {
        debug_assert!(false, "SledView is read-only");
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        tree_scan(&self.tree, start, end, limit).unwrap_or_default()
    }
}

/// Point-in-time reads of a store that keeps changing: while a snapshot is
/// being built, every commit first records the value each key had when the
/// snapshot began (its pre-image), once per key. The builder walks sled in
/// key order and prefers a recorded pre-image, so applies never wait for a
/// snapshot.
///
/// The builder's cursor (the last key it read) is kept here too, so a
/// pre-image recorded for a key the walk has already passed is known to be
/// emitted (the walk saw the key before any write touched it); a pre-image
/// of a key ahead of the cursor is emitted by the walk if the key is still
/// there, or at the end if it was deleted. Every key is emitted once.
#[derive(Default)]
pub struct SnapshotOverlay {
    inner: Mutex<Overlay>,
}

#[derive(Default)]
struct Overlay {
    active: bool,
    /// The last key the builder's walk read.
    cursor: Option<Vec<u8>>,
    /// Pre-images by unprefixed key.
    pre: BTreeMap<Vec<u8>, PreImage>,
}

/// A key's value when the snapshot began, and whether it was emitted.
struct PreImage {
    /// `None`: the key did not exist.
    old: Option<Vec<u8>>,
    emitted: bool,
}

impl SnapshotOverlay {
    fn lock(&self) -> std::sync::MutexGuard<'_, Overlay> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts recording pre-images (the snapshot's point in time is now).
    pub fn start(&self) {
        *self.lock() = Overlay { active: true, ..Overlay::default() };
    }

    /// Stops recording and forgets the pre-images.
    pub fn stop(&self) {
        *self.lock() = Overlay::default();
    }

    fn before_write<'k>(&self, tree: &sled::Tree, keys: impl Iterator<Item = &'k Vec<u8>>) -> io::Result<()> {
        let mut overlay = self.lock();
        if !overlay.active {
            return Ok(());
        }
        for key in keys {
            if !overlay.pre.contains_key(key) {
                let old = tree_get(tree, key).map_err(io::Error::other)?;
                // Passed by the walk: it read this key before any write did.
                let emitted = overlay.cursor.as_ref().is_some_and(|cursor| cursor >= key);
                overlay.pre.insert(key.clone(), PreImage { old, emitted });
            }
        }
        Ok(())
    }

    /// Streams the store as it was when [`SnapshotOverlay::start`] ran,
    /// calling `emit` once per live key.
    pub fn read_point_in_time(
        &self,
        tree: &sled::Tree,
        mut emit: impl FnMut(&[u8], &[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        for item in tree.scan_prefix(STATE_PREFIX) {
            let (key, value) = item.map_err(io::Error::other)?;
            let key = &key[STATE_PREFIX.len()..];
            // The sled read happened before this check: if the key has no
            // pre-image now, no write had touched it when sled was read.
            let chosen = {
                let mut overlay = self.lock();
                overlay.cursor = Some(key.to_vec());
                match overlay.pre.get_mut(key) {
                    None => Some(value.to_vec()),
                    Some(pre) if pre.emitted => None,
                    Some(pre) => {
                        pre.emitted = true;
                        pre.old.clone()
                    }
                }
            };
            if let Some(value) = chosen {
                emit(key, &value)?;
            }
        }
        // Keys deleted before the walk reached them.
        let deleted: Vec<(Vec<u8>, Vec<u8>)> = self
            .lock()
            .pre
            .iter()
            .filter(|(_, pre)| !pre.emitted)
            .filter_map(|(key, pre)| pre.old.clone().map(|old| (key.clone(), old)))
            .collect();
        for (key, old) in deleted {
            emit(&key, &old)?;
        }
        Ok(())
    }
}

/// Shared handle to the overlay.
pub type SharedOverlay = Arc<SnapshotOverlay>;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn tree() -> (tempfile::TempDir, sled::Tree) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).temporary(true).open().unwrap();
        let tree = db.open_tree("state").unwrap();
        (dir, tree)
    }

    fn commit(tree: &sled::Tree, overlay: &SnapshotOverlay, writes: &[(u32, Option<u32>)]) {
        let mut batch = BatchStore::new(tree);
        for (key, value) in writes {
            match value {
                Some(v) => batch.put(&key.to_be_bytes(), v.to_be_bytes().to_vec()),
                None => batch.delete(&key.to_be_bytes()),
            }
        }
        batch.commit(None, None, overlay).unwrap();
    }

    fn read(tree: &sled::Tree, overlay: &SnapshotOverlay) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let mut seen = BTreeMap::new();
        overlay
            .read_point_in_time(tree, |k, v| {
                assert!(seen.insert(k.to_vec(), v.to_vec()).is_none(), "a key was emitted twice");
                Ok(())
            })
            .unwrap();
        seen
    }

    #[test]
    fn a_batch_reads_its_own_writes_and_deletes() {
        let (_dir, tree) = tree();
        let overlay = SnapshotOverlay::default();
        commit(&tree, &overlay, &[(1, Some(10)), (2, Some(20)), (3, Some(30))]);
        let mut batch = BatchStore::new(&tree);
        batch.delete(&2u32.to_be_bytes());
        batch.put(&4u32.to_be_bytes(), vec![4]);
        assert_eq!(batch.get(&2u32.to_be_bytes()), None);
        let keys: Vec<Vec<u8>> = batch.scan(&[0], &[0xff], 10).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, [1u32, 3, 4].map(|k| k.to_be_bytes().to_vec()));
        // A deleted row does not use up the limit.
        assert_eq!(batch.scan(&[0], &[0xff], 2).len(), 2);
    }

    #[test]
    fn writes_after_the_snapshot_point_do_not_leak_into_it() {
        let (_dir, tree) = tree();
        let overlay = SnapshotOverlay::default();
        let initial: Vec<(u32, Option<u32>)> = (0..2000).map(|k| (k, Some(k))).collect();
        commit(&tree, &overlay, &initial);
        for round in 0..5u32 {
            // Outside a snapshot, the reader sees the live store.
            let expected = read(&tree, &overlay);
            overlay.start();
            let during = std::thread::scope(|scope| {
                // Writers change, delete and insert keys while the walk runs.
                scope.spawn(|| {
                    for batch in 0..50u32 {
                        let writes: Vec<(u32, Option<u32>)> = (0..40)
                            .map(|i| {
                                let key = (round * 31 + batch * 97 + i * 53) % 2500;
                                (key, if i % 3 == 0 { None } else { Some(round * 100_000 + batch) })
                            })
                            .collect();
                        commit(&tree, &overlay, &writes);
                    }
                });
                read(&tree, &overlay)
            });
            overlay.stop();
            assert_eq!(during, expected, "round {round}: the snapshot saw writes made after its point in time");
        }
    }
}
