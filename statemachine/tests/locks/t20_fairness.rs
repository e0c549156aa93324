//! Fairness: a request is granted at once only if compatible with every
//! holder AND nobody waits; waiters are served from the front, one
//! exclusive alone or every leading shared one together.

use dsync_statemachine::lock::AcquireOutcome::{Conflict, Queued};

use crate::common::*;

#[test]
fn waiters_are_granted_in_arrival_order() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", X, 1000, 0);
    for owner in ["t2", "t3", "t4"] {
        assert_eq!(r.acquire(0, "a", owner, X, 100, 5000), out(acquired(Queued), vec![]));
    }
    assert_eq!(r.waiters("a"), vec![w("t2", X), w("t3", X), w("t4", X)]);
    // Entry 5 releases t1 and grants t2 the second token, and so on down the queue.
    let expected = vec![ev_released("a", "t1"), ev_granted("a", "t2", X, 2, 110)];
    assert_eq!(r.release(10, "a", "t1"), out(released(true), expected));
    let expected = vec![ev_released("a", "t2"), ev_granted("a", "t3", X, 3, 120)];
    assert_eq!(r.release(20, "a", "t2"), out(released(true), expected));
    let expected = vec![ev_released("a", "t3"), ev_granted("a", "t4", X, 4, 130)];
    assert_eq!(r.release(30, "a", "t3"), out(released(true), expected));
    assert_eq!(r.waiters("a"), vec![]);
}

#[test]
fn shared_requests_after_a_queued_exclusive_wait_behind_it() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", S, 1000, 0);
    assert_eq!(r.acquire(0, "a", "t2", X, 1000, 5000), out(acquired(Queued), vec![]));
    // Compatible with the shared holder, but a writer waits: no overtaking.
    assert_eq!(r.acquire(0, "a", "t3", S, 1000, 5000), out(acquired(Queued), vec![]));
    assert_eq!(r.acquire(0, "a", "t4", S, 1000, 0), out(acquired(Conflict), vec![]));
    let expected = vec![ev_released("a", "t1"), ev_granted("a", "t2", X, 2, 1010)];
    assert_eq!(r.release(10, "a", "t1"), out(released(true), expected));
    assert_eq!(r.waiters("a"), vec![w("t3", S)]);
}

#[test]
fn leading_shared_waiters_are_granted_together_by_one_entry() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", X, 1000, 0);
    for (owner, mode) in [("t2", S), ("t3", S), ("t4", X), ("t5", S)] {
        r.acquire(0, "a", owner, mode, 1000, 5000);
    }
    // Granted together, in queue order: consecutive tokens.
    let expected = vec![ev_released("a", "t1"), ev_granted("a", "t2", S, 2, 1000), ev_granted("a", "t3", S, 3, 1000)];
    assert_eq!(r.release(0, "a", "t1"), out(released(true), expected));
    assert_eq!(r.holders("a"), vec![h("t2", S, 2, 1000), h("t3", S, 3, 1000)]);
    assert_eq!(r.waiters("a"), vec![w("t4", X), w("t5", S)]);
    // The writer needs every reader gone; then the last reader follows it.
    assert_eq!(r.release(0, "a", "t2"), out(released(true), vec![ev_released("a", "t2")]));
    let expected = vec![ev_released("a", "t3"), ev_granted("a", "t4", X, 4, 1000)];
    assert_eq!(r.release(0, "a", "t3"), out(released(true), expected));
    let expected = vec![ev_released("a", "t4"), ev_granted("a", "t5", S, 5, 1000)];
    assert_eq!(r.release(0, "a", "t4"), out(released(true), expected));
}

#[test]
fn an_exclusive_waiter_needs_every_shared_holder_gone() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", S, 1000, 0);
    r.acquire(0, "a", "t2", S, 1000, 0);
    r.acquire(0, "a", "t3", X, 1000, 5000);
    assert_eq!(r.release(0, "a", "t2"), out(released(true), vec![ev_released("a", "t2")]));
    let expected = vec![ev_released("a", "t1"), ev_granted("a", "t3", X, 3, 1000)];
    assert_eq!(r.release(0, "a", "t1"), out(released(true), expected));
}
