//! Write-back: the dirty value reaches the backing memory; the line is
//! clean and an M holder becomes E.

use crate::common::*;

#[test]
fn a_write_back_cleans_the_line_and_turns_m_into_e() {
    let mut replica = Replica::default();
    let v = replica.put_version(1, "k", "{\"x\":[1]}");
    let output = replica.write_back("k", v, false);
    assert_eq!(output, out(applied("k", v, false, &[(1, E)], &[]), vec![ev_written_back("k", v)]));
    assert_eq!(replica.line("k"), line(v, None, &[(1, E)]));
    assert_eq!(replica.memory("k"), None, "an external memory (Redis) holds it, not the store");
    assert!(dsync_statemachine::cache::dirty_keys(&replica.store, None, 10).is_empty());
}

#[test]
fn an_embedded_write_back_stores_the_value_as_the_backing_memory() {
    let mut replica = Replica::default();
    let v = replica.put_version(1, "k", "{\"x\":[1]}");
    replica.fill(2, "k", v);
    let output = replica.write_back("k", v, true);
    assert_eq!(output, out(applied("k", v, false, &[(1, S), (2, S)], &[]), vec![ev_written_back("k", v)]));
    assert_eq!(replica.memory("k"), Some((v, "{\"x\":[1]}".to_string())));
    let v2 = replica.put_version(3, "k", "2");
    assert_eq!(replica.memory("k"), Some((v, "{\"x\":[1]}".to_string())), "until the next write-back");
    replica.write_back("k", v2, true);
    assert_eq!(replica.memory("k"), Some((v2, "2".to_string())));
}

#[test]
fn a_write_back_of_a_clean_line_changes_nothing_and_emits_nothing() {
    let mut replica = Replica::default();
    let v = replica.put_version(1, "k", "1");
    replica.write_back("k", v, true);
    let before = replica.store.clone();
    assert_eq!(replica.write_back("k", v, true), out(applied("k", v, false, &[(1, E)], &[]), vec![]));
    assert_eq!(replica.store, before);
}

#[test]
fn a_write_back_of_an_older_version_is_stale_and_the_newer_value_stays_dirty() {
    let mut replica = Replica::default();
    let v1 = replica.put_version(1, "k", "1");
    let v2 = replica.put_version(2, "k", "2");
    assert_eq!(replica.write_back("k", v1, true), out(stale(v2), vec![]));
    assert_eq!(replica.line("k"), line(v2, Some("2"), &[(2, M)]));
    assert_eq!(replica.memory("k"), None);
    assert_eq!(replica.write_back("gone", v1, true), out(not_found(), vec![]));
}

#[test]
fn a_line_downgraded_from_m_stays_dirty_until_written_back_then_nobody_is_m() {
    let mut replica = Replica::default();
    let v = replica.put_version(1, "k", "1");
    replica.fill(2, "k", v);
    replica.evict(2, "k", v);
    assert_eq!(replica.line("k"), line(v, Some("1"), &[(1, S)]), "S and dirty: the flusher still owes it");
    replica.evict(1, "k", v);
    assert_eq!(replica.fill(3, "k", v), out(applied("k", v, true, &[(3, E)], &[]), vec![]));
    assert_eq!(replica.write_back("k", v, true).response, applied("k", v, false, &[(3, E)], &[]));
}
