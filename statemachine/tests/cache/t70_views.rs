//! The read helpers the server uses: lines, memory values, and paged lists
//! of dirty keys (the flusher's work) and of a node's lines.

use dsync_statemachine::cache::{self, Mesi};

use crate::common::*;

/// Keys with the bytes that could confuse an encoding, in byte order.
const ODD_KEYS: [&str; 6] = ["\0", "a", "a\0", "a\0b", "a/b", "é"];

fn strings(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| k.to_string()).collect()
}

#[test]
fn odd_keys_are_kept_apart_and_in_byte_order() {
    let mut replica = Replica::default();
    for (i, key) in ODD_KEYS.iter().enumerate().rev() {
        replica.put(1, key, &i.to_string());
    }
    for (i, key) in ODD_KEYS.iter().enumerate() {
        let version = ODD_KEYS.len() as u64 - i as u64;
        assert_eq!(replica.line(key), line(version, Some(&i.to_string()), &[(1, Mesi::M)]), "{key:?}");
    }
    assert_eq!(cache::dirty_keys(&replica.store, None, 100), strings(&ODD_KEYS));
    assert_eq!(cache::held_by(&replica.store, 1, None, 100), strings(&ODD_KEYS));
    assert_eq!(replica.line("a\0\0"), None);
}

#[test]
fn dirty_keys_page_strictly_after_the_last_key_seen() {
    let mut replica = Replica::default();
    for key in ODD_KEYS {
        let v = replica.put_version(1, key, "0");
        if key == "a/b" {
            replica.write_back(key, v, true);
        }
    }
    let dirty = |after, limit| cache::dirty_keys(&replica.store, after, limit);
    assert_eq!(dirty(None, 2), strings(&["\0", "a"]));
    assert_eq!(dirty(Some("a"), 2), strings(&["a\0", "a\0b"]));
    assert_eq!(dirty(Some("a\0b"), 2), strings(&["é"]), "a/b is clean");
    assert_eq!(dirty(Some("a\0a"), 1), strings(&["a\0b"]), "`after` need not be a key");
    assert!(dirty(Some("é"), 2).is_empty());
    assert!(dirty(None, 0).is_empty());
}

#[test]
fn held_by_lists_one_nodes_lines_only_paged_by_key() {
    let mut replica = Replica::default();
    for key in ["a", "b", "c", "d"] {
        let v = replica.put_version(1, key, "0");
        if key != "c" {
            replica.fill(2, key, v);
        }
    }
    replica.put(3, "b", "1");
    let held = |node, after, limit| cache::held_by(&replica.store, node, after, limit);
    assert_eq!(held(1, None, 10), strings(&["a", "c", "d"]));
    assert_eq!(held(2, None, 10), strings(&["a", "d"]));
    assert_eq!(held(2, Some("a"), 10), strings(&["d"]));
    assert_eq!(held(3, None, 10), strings(&["b"]));
    assert!(held(4, None, 10).is_empty());
    assert!(held(u64::MAX, None, 10).is_empty());
}

#[test]
fn garbage_index_keys_do_not_cut_a_page_short() {
    use dsync_statemachine::Store;

    let mut replica = Replica::default();
    replica.put(1, "a", "0");
    replica.put(1, "z", "0");
    for junk in [&b"cdb"[..], b"cdc\x00", b"cdd\x00\x02"] {
        replica.store.put(junk, Vec::new());
    }
    assert_eq!(cache::dirty_keys(&replica.store, None, 2), strings(&["a", "z"]));
    assert_eq!(cache::dirty_keys(&replica.store, Some("a"), 1), strings(&["z"]));
}

#[test]
fn the_memory_value_is_there_only_after_an_embedded_write_back() {
    let mut replica = Replica::default();
    let v = replica.put_version(1, "k", "[1]");
    assert_eq!(replica.memory("k"), None);
    replica.write_back("k", v, true);
    assert_eq!(replica.memory("k"), Some((v, "[1]".to_string())));
    assert_eq!(replica.memory("other"), None);
}
