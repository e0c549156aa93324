//! Ordered key-value storage for replicated state that may not fit in
//! memory (queue backlogs).
//!
//! The state machine stays pure: it reads and writes through [`Store`] and
//! never touches a file itself. The engine backs it with sled, buffering an
//! apply batch's writes and committing them atomically with the applied
//! index; tests back it with [`MemStore`]. Given the same store contents,
//! the same entry produces the same writes on every replica.

use std::collections::BTreeMap;
use std::ops::Bound;

/// Ordered byte-keyed storage seen by the state machine.
pub trait Store {
    /// The value at `key`, if any.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
    /// Sets `key` to `value`.
    fn put(&mut self, key: &[u8], value: Vec<u8>);
    /// Removes `key` (absent keys are fine).
    fn delete(&mut self, key: &[u8]);
    /// Up to `limit` entries with `start <= key < end`, in ascending key order.
    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Vec<(Vec<u8>, Vec<u8>)>;
}

/// A [`Store`] in memory: for tests, benchmarks and reference models.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemStore {
    /// Every key and value.
    pub entries: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Store for MemStore {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.entries.get(key).cloned()
    }

    fn put(&mut self, key: &[u8], value: Vec<u8>) {
        self.entries.insert(key.to_vec(), value);
    }

    fn delete(&mut self, key: &[u8]) {
        self.entries.remove(key);
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        if start >= end {
            return Vec::new();
        }
        self.entries
            .range::<[u8], _>((Bound::Included(start), Bound::Excluded(end)))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// A store that holds nothing and forgets every write. Replaying entries
/// against it rebuilds only the in-memory part of the state: the engine does
/// that on restart for entries whose store writes sled already holds, so
/// queue logic must cope with it (and with any store content) without
/// panicking.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiscardStore;

impl Store for DiscardStore {
    fn get(&self, _key: &[u8]) -> Option<Vec<u8>> {
        None
    }

    fn put(&mut self, _key: &[u8], _value: Vec<u8>) {}

    fn delete(&mut self, _key: &[u8]) {}

    fn scan(&self, _start: &[u8], _end: &[u8], _limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_is_ordered_half_open_and_limited() {
        let mut store = MemStore::default();
        for key in [b"a", b"b", b"c", b"d"] {
            store.put(key, key.to_vec());
        }
        store.delete(b"c");
        let keys: Vec<_> = store.scan(b"b", b"z", 10).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, vec![b"b".to_vec(), b"d".to_vec()]);
        assert_eq!(store.scan(b"a", b"c", 1).len(), 1);
        assert!(store.scan(b"d", b"a", 10).is_empty());
    }
}
