//! Invalidate drops every copy and keeps the value; delete removes the key
//! from the directory and the backing memory.

use dsync_statemachine::cache::InvalidationReason::{Delete, Invalidate, Put};

use crate::common::*;

#[test]
fn an_invalidate_drops_every_holder_and_keeps_a_dirty_value() {
    let mut replica = Replica::default();
    let v = replica.put_version(1, "k", "1");
    replica.fill(2, "k", v);
    let output = replica.invalidate("k");
    assert_eq!(output, out(applied("k", v, true, &[], &[1, 2]), vec![ev_invalidated("k", v, &[1, 2], Invalidate)]));
    assert_eq!(replica.line("k"), line(v, Some("1"), &[]), "a racing put's value is never lost");
}

#[test]
fn an_invalidate_is_announced_even_when_nobody_holds_the_line() {
    let mut replica = Replica::default();
    let v = replica.put_version(1, "k", "1");
    replica.invalidate("k");
    let output = replica.invalidate("k");
    assert_eq!(output, out(applied("k", v, true, &[], &[]), vec![ev_invalidated("k", v, &[], Invalidate)]));
    assert_eq!(replica.invalidate("nope"), out(not_found(), vec![]));
}

#[test]
fn a_delete_removes_the_record_the_indexes_and_the_memory_value() {
    let mut replica = Replica::default();
    let v1 = replica.put_version(1, "k", "1");
    replica.write_back("k", v1, true);
    let v2 = replica.put_version(1, "k", "2");
    replica.fill(2, "k", v2);
    let output = replica.delete("k");
    assert_eq!(output, out(applied("k", v2, false, &[], &[1, 2]), vec![ev_invalidated("k", v2, &[1, 2], Delete)]));
    assert_eq!((replica.line("k"), replica.memory("k")), (None, None));
    assert!(replica.store.entries.is_empty(), "nothing left: {:?}", replica.store.entries);
}

#[test]
fn a_deleted_key_is_not_found_until_put_again_with_a_new_version() {
    let mut replica = Replica::default();
    let v = replica.put_version(1, "k", "1");
    replica.delete("k");
    assert_eq!(replica.delete("k"), out(not_found(), vec![]));
    assert_eq!(replica.fill(1, "k", v), out(not_found(), vec![]));
    assert_eq!(replica.evict(1, "k", v), out(not_found(), vec![]));
    assert_eq!(replica.write_back("k", v, true), out(not_found(), vec![]));
    let output = replica.put(2, "k", "again");
    assert_eq!(output, out(applied("k", v + 1, true, &[(2, M)], &[]), vec![ev_invalidated("k", v + 1, &[], Put)]));
}
