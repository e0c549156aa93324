//! Evict: a node drops its copy; the directory forgets it and nothing else.

use crate::common::*;

#[test]
fn an_evict_removes_the_holder_and_keeps_the_value_dirty() {
    let mut replica = Replica::default();
    let v = replica.put_version(1, "k", "1");
    replica.fill(2, "k", v);
    assert_eq!(replica.evict(1, "k", v), out(applied("k", v, true, &[(2, S)], &[1]), vec![]));
    assert_eq!(replica.evict(2, "k", v), out(applied("k", v, true, &[], &[2]), vec![]));
    assert_eq!(replica.line("k"), line(v, Some("1"), &[]));
}

#[test]
fn an_evict_by_a_node_that_does_not_hold_the_line_drops_nobody() {
    let mut replica = Replica::default();
    let v = replica.put_version(1, "k", "1");
    let before = replica.store.clone();
    assert_eq!(replica.evict(9, "k", v), out(applied("k", v, true, &[(1, M)], &[]), vec![]));
    assert_eq!(replica.store, before);
}

#[test]
fn an_evict_of_another_version_is_stale_even_for_a_holder() {
    let mut replica = Replica::default();
    let v1 = replica.put_version(1, "k", "1");
    let v2 = replica.put_version(1, "k", "2");
    assert_eq!(replica.evict(1, "k", v1), out(stale(v2), vec![]));
    assert_eq!(replica.line("k"), line(v2, Some("2"), &[(1, M)]));
    assert_eq!(replica.evict(1, "nope", v1), out(not_found(), vec![]));
}
