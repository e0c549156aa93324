//! Idempotence: a retry of what is held returns the same grant with the
//! lease extended; a duplicate of a pending request changes nothing;
//! releasing what is not held returns false and changes nothing.

use dsync_statemachine::lock::AcquireOutcome::Queued;

use crate::common::*;

#[test]
fn reacquiring_a_held_lock_returns_the_same_token_with_the_lease_extended() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", X, 1000, 0);
    // No event: nothing new is held.
    assert_eq!(r.acquire(500, "a", "t1", X, 1000, 0), out(granted("t1", X, 1, 1500), vec![]));
    // Shared while holding exclusive is covered by the exclusive hold.
    assert_eq!(r.acquire(600, "a", "t1", S, 100, 0), out(granted("t1", X, 1, 700), vec![]));
    assert_eq!(r.holders("a"), vec![h("t1", X, 1, 700)]);
}

#[test]
fn a_shared_holder_reacquiring_shared_keeps_its_token_while_its_upgrade_waits() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", S, 1000, 0);
    r.acquire(0, "a", "t2", S, 1000, 0);
    r.acquire(0, "a", "t1", X, 1000, 5000);
    assert_eq!(r.acquire(10, "a", "t1", S, 2000, 0), out(granted("t1", S, 1, 2010), vec![]));
    assert_eq!(r.waiters("a"), vec![w("t1", X)]);
}

#[test]
fn resending_a_pending_request_returns_queued_and_changes_nothing() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", X, 1000, 0);
    r.acquire(0, "a", "t2", X, 1000, 300);
    let before = r.locks().clone();
    assert_eq!(r.acquire(100, "a", "t2", X, 1000, 5000), out(acquired(Queued), vec![]));
    // Any mode: an owner has at most one pending request per resource.
    assert_eq!(r.acquire(100, "a", "t2", S, 1000, 5000), out(acquired(Queued), vec![]));
    assert_eq!(r.locks(), &before);
    assert_eq!(r.locks().view("a").unwrap().waiters[0].deadline_ms, 300);
}

#[test]
fn releasing_what_is_not_held_returns_false_and_changes_nothing() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", X, 1000, 0);
    r.acquire(0, "a", "t2", X, 1000, 5000);
    let before = r.locks().clone();
    assert_eq!(r.release(0, "nowhere", "t1"), out(released(false), vec![]));
    assert_eq!(r.release(0, "a", "stranger"), out(released(false), vec![]));
    // A waiter holds nothing, and its pending request is not cancelled.
    assert_eq!(r.release(0, "a", "t2"), out(released(false), vec![]));
    assert_eq!(r.locks(), &before);
}

#[test]
fn releasing_twice_releases_once() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", X, 1000, 0);
    assert_eq!(r.release(0, "a", "t1"), out(released(true), vec![ev_released("a", "t1")]));
    assert_eq!(r.release(0, "a", "t1"), out(released(false), vec![]));
    assert_eq!(r.locks().view("a"), None);
}

#[test]
fn an_owner_with_nothing_left_is_forgotten_and_counts_as_new_again() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", S, 1000, 0); // t1 first seen at 1
    r.acquire(0, "b", "t2", X, 1000, 0); // t2 first seen at 2
    r.release(0, "a", "t1"); // t1 forgotten
    r.acquire(0, "b", "t1", X, 1000, 5000); // t1 new again, first seen at 4
    r.acquire(0, "c", "t1", X, 1000, 0);
    // t2 waiting for c closes t2 -> t1 -> t2; t1 is now the younger.
    let expected =
        vec![ev_deadlock("t1", "b", &["t2", "t1"]), ev_released("c", "t1"), ev_granted("c", "t2", X, 4, 1000)];
    assert_eq!(r.acquire(0, "c", "t2", X, 1000, 5000), out(granted("t2", X, 4, 1000), expected));
    assert_eq!(r.locks().wait_for(), vec![]);
}
