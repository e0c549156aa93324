//! Store damage shared by the robustness tests of every keyspace: whatever
//! a store holds, `State::apply` must not panic.

use dsync_statemachine::{MemStore, Store};

/// Every store that differs from `clean` in exactly one record: truncated,
/// extended by a byte, emptied, missing, or holding its neighbour's value.
pub fn one_record_damaged(clean: &MemStore) -> Vec<MemStore> {
    let keys: Vec<Vec<u8>> = clean.entries.keys().cloned().collect();
    let mut damaged = Vec::new();
    for (k, key) in keys.iter().enumerate() {
        let value = &clean.entries[key];
        let variants = [
            Some(value[..value.len() / 2].to_vec()),
            Some([&value[..], &[0xFF]].concat()),
            Some(Vec::new()),
            None,
            Some(clean.entries[&keys[(k + 1) % keys.len()]].clone()),
        ];
        for variant in variants {
            let mut store = clean.clone();
            match variant {
                Some(bad) => store.put(key, bad),
                None => store.delete(key),
            }
            damaged.push(store);
        }
    }
    damaged
}

/// `clean` plus `junk` keys (of the keyspace under test, decoding as
/// nothing) holding three bytes, with every value's bits flipped.
pub fn junk_keys_and_flipped_values(clean: &MemStore, junk: &[&[u8]]) -> MemStore {
    let mut store = clean.clone();
    for key in junk {
        store.put(key, vec![1, 2, 3]);
    }
    for value in store.entries.values_mut() {
        value.iter_mut().for_each(|byte| *byte ^= 0x5A);
    }
    store
}
