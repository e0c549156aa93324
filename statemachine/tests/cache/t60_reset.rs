//! Reset: a node that starts over holds nothing, and only its copies go.

use dsync_statemachine::cache::{self, RESET_PER_ENTRY_MAX};
use dsync_statemachine::{Command, Store};

use crate::common::*;

#[test]
fn a_reset_drops_the_node_from_every_line_it_holds_and_emits_nothing() {
    let mut replica = Replica::default();
    let a = replica.put_version(1, "a", "1");
    replica.fill(2, "a", a);
    let b = replica.put_version(2, "b", "2");
    replica.put(3, "c", "3");
    assert_eq!(replica.reset(2), out(reset(2), vec![]));
    assert_eq!(replica.line("a"), line(a, Some("1"), &[(1, S)]));
    assert_eq!(replica.line("b"), line(b, Some("2"), &[]), "its dirty value stays: the flusher writes it");
    assert_eq!(replica.line("c").unwrap().holders, holders(&[(3, M)]));
    assert!(cache::held_by(&replica.store, 2, None, 10).is_empty());
    assert_eq!(replica.reset(2), out(reset(0), vec![]));
}

#[test]
fn one_reset_handles_a_bounded_number_of_lines_and_the_next_one_the_rest() {
    let mut replica = Replica::default();
    let lines = RESET_PER_ENTRY_MAX + 3;
    for i in 0..lines {
        replica.put(5, &format!("k{i:05}"), "0");
    }
    assert_eq!(replica.reset(5).response, reset(RESET_PER_ENTRY_MAX as u64));
    assert_eq!(cache::held_by(&replica.store, 5, None, 10).len(), 3, "the server sees more and resets again");
    assert_eq!(replica.reset(5).response, reset(3));
    assert!(cache::held_by(&replica.store, 5, None, 1).is_empty());
}

#[test]
fn stale_holder_index_entries_are_dropped_without_counting() {
    let mut replica = Replica::default();
    replica.put(1, "real", "1");
    // Index entries whose record is missing, or does not list the node.
    let mut other = Replica::default();
    other.put(1, "ghost", "1");
    other.put(2, "real", "1");
    for (key, value) in other.store.entries.iter().filter(|(key, _)| key.starts_with(b"ch")) {
        replica.store.put(key, value.clone());
    }
    let output = replica.apply_unchecked(Command::CacheReset { node: 1 });
    assert_eq!(output.response, reset(1), "only `real` was really held by node 1");
    let output = replica.reset(2);
    assert_eq!(output.response, reset(0), "node 2's entry for `real` was stale");
    assert_eq!(cache::check_invariants(&replica.store), Ok(()));
}
