//! Fill (a read miss): E alone, S when shared; other M and E copies are
//! downgraded to S, and a dirty value stays dirty.

use crate::common::*;

#[test]
fn a_fill_of_a_line_nobody_holds_is_exclusive() {
    let mut replica = Replica::default();
    let v = replica.put_version(1, "k", "1");
    replica.invalidate("k");
    assert_eq!(replica.fill(2, "k", v), out(applied("k", v, true, &[(2, E)], &[]), vec![]));
}

#[test]
fn fills_by_others_downgrade_m_to_s_and_keep_the_value_dirty() {
    let mut replica = Replica::default();
    let v = replica.put_version(1, "k", "1");
    assert_eq!(replica.fill(2, "k", v), out(applied("k", v, true, &[(1, S), (2, S)], &[]), vec![]));
    assert_eq!(replica.fill(3, "k", v), out(applied("k", v, true, &[(1, S), (2, S), (3, S)], &[]), vec![]));
    assert_eq!(replica.line("k"), line(v, Some("1"), &[(1, S), (2, S), (3, S)]));
}

#[test]
fn a_fill_by_another_downgrades_e_to_s() {
    let mut replica = Replica::default();
    let v = replica.put_version(1, "k", "1");
    replica.write_back("k", v, true);
    assert_eq!(replica.line("k"), line(v, None, &[(1, E)]));
    assert_eq!(replica.fill(2, "k", v), out(applied("k", v, false, &[(1, S), (2, S)], &[]), vec![]));
}

#[test]
fn a_fill_by_a_holder_changes_nothing() {
    let mut replica = Replica::default();
    let v = replica.put_version(1, "k", "1");
    let before = replica.store.clone();
    assert_eq!(replica.fill(1, "k", v), out(applied("k", v, true, &[(1, M)], &[]), vec![]));
    assert_eq!(replica.store, before, "no write at all");
}

#[test]
fn a_fill_of_another_version_is_stale_and_of_an_unknown_key_not_found() {
    let mut replica = Replica::default();
    let v = replica.put_version(1, "k", "1");
    replica.put(1, "k", "2");
    let before = replica.store.clone();
    assert_eq!(replica.fill(2, "k", v), out(stale(v + 1), vec![]));
    assert_eq!(replica.fill(2, "k", v + 2), out(stale(v + 1), vec![]));
    assert_eq!(replica.fill(2, "nope", v), out(not_found(), vec![]));
    assert_eq!(replica.store, before);
}
