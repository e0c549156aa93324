//! Deadlock: checked when a request is queued; while the new waiter is on a
//! cycle of the wait-for graph, the youngest owner of the (shortest) cycle
//! is aborted: its pending requests fail, its holds are released, waiters
//! are granted. Exactly one victim per cycle; the others proceed.

use dsync_statemachine::lock::AcquireOutcome::{Deadlock, Queued};
use dsync_statemachine::lock::WaitEdge;

use crate::common::*;

/// An expected wait-for edge.
fn edge(waiter: &str, holder: &str, resource: &str) -> WaitEdge {
    WaitEdge { waiter: waiter.into(), holder: holder.into(), resource: resource.into() }
}

#[test]
fn two_owners_deadlock_and_the_younger_requester_is_aborted() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", X, 1000, 0);
    r.acquire(0, "b", "t2", X, 1000, 0);
    assert_eq!(r.acquire(0, "b", "t1", X, 1000, 5000), out(acquired(Queued), vec![]));
    assert_eq!(r.locks().wait_for(), vec![edge("t1", "t2", "b")]);
    let expected =
        vec![ev_deadlock("t2", "a", &["t2", "t1"]), ev_released("b", "t2"), ev_granted("b", "t1", X, 3, 1000)];
    assert_eq!(r.acquire(0, "a", "t2", X, 1000, 5000), out(acquired(Deadlock), expected));
    assert_eq!(r.holders("a"), vec![h("t1", X, 1, 1000)]);
    assert_eq!(r.holders("b"), vec![h("t1", X, 3, 1000)]);
    assert_eq!(r.locks().wait_for(), vec![]);
    assert_eq!(r.locks().deadlocks_resolved(), 1);
}

#[test]
fn the_youngest_is_aborted_even_when_an_older_owner_closes_the_cycle() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", X, 1000, 0);
    r.acquire(0, "b", "t2", X, 1000, 0);
    r.acquire(0, "a", "t2", X, 1000, 5000);
    // t2's abort frees b, so t1's request is granted by the same entry.
    let expected =
        vec![ev_deadlock("t2", "a", &["t1", "t2"]), ev_released("b", "t2"), ev_granted("b", "t1", X, 3, 1000)];
    assert_eq!(r.acquire(0, "b", "t1", X, 1000, 5000), out(granted("t1", X, 3, 1000), expected));
    assert_eq!(r.locks().wait_for(), vec![]);
}

#[test]
fn three_owners_deadlock_and_only_the_youngest_is_aborted() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", X, 1000, 0);
    r.acquire(0, "b", "t2", X, 1000, 0);
    r.acquire(0, "c", "t3", X, 1000, 0);
    r.acquire(0, "b", "t1", X, 1000, 5000);
    r.acquire(0, "c", "t2", X, 1000, 5000);
    let expected =
        vec![ev_deadlock("t3", "a", &["t3", "t1", "t2"]), ev_released("c", "t3"), ev_granted("c", "t2", X, 4, 1000)];
    assert_eq!(r.acquire(0, "a", "t3", X, 1000, 5000), out(acquired(Deadlock), expected));
    // The others proceed: t2 finishes, then t1 gets b.
    assert_eq!(r.locks().wait_for(), vec![edge("t1", "t2", "b")]);
    let expected = vec![ev_released("b", "t2"), ev_granted("b", "t1", X, 5, 1000)];
    assert_eq!(r.release(0, "b", "t2"), out(released(true), expected));
    assert_eq!(r.locks().wait_for(), vec![]);
}

#[test]
fn a_victim_in_the_middle_of_the_cycle_is_aborted_and_the_requester_keeps_waiting() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", X, 1000, 0);
    r.acquire(0, "b", "t2", X, 1000, 0);
    r.acquire(0, "c", "t3", X, 1000, 0);
    r.acquire(0, "a", "t3", X, 1000, 5000);
    r.acquire(0, "c", "t2", X, 1000, 5000);
    let expected =
        vec![ev_deadlock("t3", "a", &["t1", "t2", "t3"]), ev_released("c", "t3"), ev_granted("c", "t2", X, 4, 1000)];
    assert_eq!(r.acquire(0, "b", "t1", X, 1000, 5000), out(acquired(Queued), expected));
    assert_eq!(r.locks().wait_for(), vec![edge("t1", "t2", "b")]);
    assert_eq!(r.locks().deadlocks_resolved(), 1);
}

#[test]
fn a_victim_loses_every_pending_request_and_every_hold() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", X, 1000, 0);
    r.acquire(0, "d", "t3", X, 1000, 0);
    r.acquire(0, "b", "t2", X, 1000, 0);
    r.acquire(0, "c", "t2", X, 1000, 0);
    r.acquire(0, "d", "t2", X, 1000, 5000);
    r.acquire(0, "b", "t1", X, 1000, 5000);
    let expected = vec![
        ev_deadlock("t2", "a", &["t2", "t1"]),
        ev_deadlock("t2", "d", &["t2", "t1"]),
        ev_released("b", "t2"),
        ev_released("c", "t2"),
        ev_granted("b", "t1", X, 5, 1000),
    ];
    assert_eq!(r.acquire(0, "a", "t2", X, 1000, 5000), out(acquired(Deadlock), expected));
    assert_eq!(r.locks().held().iter().map(|v| v.resource.as_str()).collect::<Vec<_>>(), vec!["a", "b", "d"]);
    assert_eq!(r.locks().wait_for(), vec![]);
}

#[test]
fn waiting_behind_an_incompatible_waiter_is_an_edge_that_can_close_a_cycle() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", X, 1000, 0);
    r.acquire(0, "b", "t3", X, 1000, 0);
    r.acquire(0, "a", "t2", X, 1000, 5000);
    r.acquire(0, "a", "t3", S, 1000, 5000);
    assert_eq!(r.locks().wait_for(), vec![edge("t2", "t1", "a"), edge("t3", "t1", "a"), edge("t3", "t2", "a")]);
    let expected = vec![ev_deadlock("t2", "a", &["t2", "t3"]), ev_deadlock("t2", "b", &["t2", "t3"])];
    assert_eq!(r.acquire(0, "b", "t2", X, 1000, 5000), out(acquired(Deadlock), expected));
    assert_eq!(r.locks().wait_for(), vec![edge("t3", "t1", "a")]);
}

#[test]
fn one_request_closing_two_cycles_aborts_one_victim_per_cycle() {
    let mut r = Replica::default();
    r.acquire(0, "p", "t5", X, 1000, 0); // t5 is the oldest
    r.acquire(0, "r", "t1", S, 1000, 0);
    r.acquire(0, "r", "t2", S, 1000, 0);
    r.acquire(0, "p", "t1", X, 1000, 5000);
    r.acquire(0, "p", "t2", X, 1000, 5000);
    let expected = vec![
        ev_deadlock("t1", "p", &["t5", "t1"]),
        ev_released("r", "t1"),
        ev_deadlock("t2", "p", &["t5", "t2"]),
        ev_released("r", "t2"),
        ev_granted("r", "t5", X, 4, 1000),
    ];
    assert_eq!(r.acquire(0, "r", "t5", X, 1000, 5000), out(granted("t5", X, 4, 1000), expected));
    assert_eq!(r.locks().deadlocks_resolved(), 2);
    assert_eq!(r.locks().wait_for(), vec![]);
}

#[test]
fn the_shortest_cycle_through_the_new_waiter_is_broken_first() {
    let mut r = Replica::default();
    r.acquire(0, "r1", "n", X, 1000, 0); // n is the oldest
    r.acquire(0, "r4", "n", X, 1000, 0);
    r.acquire(0, "r5", "a", S, 1000, 0);
    r.acquire(0, "r5", "c", S, 1000, 0);
    r.acquire(0, "r3", "b", X, 1000, 0);
    r.acquire(0, "r3", "a", X, 1000, 5000); // a -> b
    r.acquire(0, "r1", "b", X, 1000, 5000); // b -> n
    r.acquire(0, "r4", "c", X, 1000, 5000); // c -> n
                                            // n -> a and n -> c close n,a,b (smaller names) and n,c (shorter).
    let expected = vec![
        ev_deadlock("c", "r4", &["n", "c"]),
        ev_released("r5", "c"),
        ev_deadlock("b", "r1", &["n", "a", "b"]),
        ev_released("r3", "b"),
        ev_granted("r3", "a", X, 6, 1000),
    ];
    assert_eq!(r.acquire(0, "r5", "n", X, 1000, 5000), out(acquired(Queued), expected));
    assert_eq!(r.locks().wait_for(), vec![edge("n", "a", "r5")]);
    assert_eq!(r.locks().deadlocks_resolved(), 2);
}

#[test]
fn a_cycle_through_a_long_queue_is_found_and_only_its_youngest_aborted() {
    let mut r = Replica::default();
    r.acquire(0, "hot", "o00", X, 1000, 0);
    r.acquire(0, "side", "z", X, 1000, 0); // z first seen at 2
    let queued: Vec<String> = (1..=30).map(|i| format!("o{i:02}")).collect();
    for owner in &queued {
        r.acquire(0, "hot", owner, X, 1000, 5000);
    }
    r.acquire(0, "side", "o01", X, 1000, 5000); // the queue's front waits for z
                                                // z queuing on hot waits for all 31 owners; only o01 waits back for z.
    let expected = vec![ev_deadlock("o01", "hot", &["z", "o01"]), ev_deadlock("o01", "side", &["z", "o01"])];
    assert_eq!(r.acquire(0, "hot", "z", X, 1000, 5000), out(acquired(Queued), expected));
    let mut waiting: Vec<_> = queued[1..].iter().map(|o| w(o, X)).collect();
    waiting.push(w("z", X));
    assert_eq!(r.waiters("hot"), waiting);
    assert_eq!(r.locks().deadlocks_resolved(), 1);
}
