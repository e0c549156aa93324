//! Put: the writer alone holds the line, in M, with the value dirty; the
//! version comes from one counter for every key.

use dsync_statemachine::cache::InvalidationReason::Put;

use crate::common::*;

#[test]
fn a_first_put_makes_the_writer_the_only_holder_in_m_with_the_value_dirty() {
    let mut replica = Replica::default();
    let output = replica.put(1, "k", "{\"a\":1}");
    assert_eq!(output, out(applied("k", 1, true, &[(1, M)], &[]), vec![ev_invalidated("k", 1, &[], Put)]));
    assert_eq!(replica.line("k"), line(1, Some("{\"a\":1}"), &[(1, M)]));
    assert_eq!(replica.state.cache.last_version, 1);
}

#[test]
fn a_put_drops_every_other_holder_whatever_its_state() {
    let mut replica = Replica::default();
    let v1 = replica.put_version(1, "k", "1");
    replica.fill(2, "k", v1);
    replica.fill(3, "k", v1);
    let output = replica.put(2, "k", "2");
    assert_eq!(output, out(applied("k", 2, true, &[(2, M)], &[1, 3]), vec![ev_invalidated("k", 2, &[1, 3], Put)]));
    assert_eq!(replica.line("k"), line(2, Some("2"), &[(2, M)]));
}

#[test]
fn a_put_by_the_only_holder_drops_nobody_and_still_announces_the_version() {
    let mut replica = Replica::default();
    let v1 = replica.put_version(4, "k", "1");
    replica.write_back("k", v1, false);
    assert_eq!(replica.line("k"), line(1, None, &[(4, E)]));
    let output = replica.put(4, "k", "2");
    assert_eq!(output, out(applied("k", 2, true, &[(4, M)], &[]), vec![ev_invalidated("k", 2, &[], Put)]));
}

#[test]
fn versions_strictly_increase_across_keys() {
    let mut replica = Replica::default();
    let versions: Vec<u64> =
        ["a", "b", "a", "c", "b"].iter().enumerate().map(|(i, k)| replica.put_version(i as u64 % 3, k, "0")).collect();
    assert_eq!(versions, vec![1, 2, 3, 4, 5]);
    assert_eq!(replica.line("a").unwrap().version, 3);
}

#[test]
fn a_put_replaces_a_dirty_value_not_yet_written_back() {
    let mut replica = Replica::default();
    replica.put(1, "k", "old");
    replica.put(1, "k", "new");
    assert_eq!(replica.line("k"), line(2, Some("new"), &[(1, M)]));
    assert_eq!(dsync_statemachine::cache::dirty_keys(&replica.store, None, 10), vec!["k".to_string()]);
}
