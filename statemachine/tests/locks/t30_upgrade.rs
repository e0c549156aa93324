//! Upgrade: a shared holder asking for exclusive is granted at once (new
//! token) if it is the only holder; otherwise it waits at the front of the
//! queue, keeping its shared hold.

use dsync_statemachine::lock::AcquireOutcome::{Conflict, Deadlock, Queued};

use crate::common::*;

#[test]
fn the_only_shared_holder_upgrades_at_once_with_a_new_token() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", S, 1000, 0);
    assert_eq!(
        r.acquire(10, "a", "t1", X, 500, 0),
        out(granted("t1", X, 2, 510), vec![ev_granted("a", "t1", X, 2, 510)])
    );
    assert_eq!(r.holders("a"), vec![h("t1", X, 2, 510)]);
}

#[test]
fn the_only_holder_upgrades_at_once_even_with_others_queued() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", S, 1000, 0);
    r.acquire(0, "a", "t2", X, 1000, 5000);
    assert_eq!(
        r.acquire(0, "a", "t1", X, 1000, 0),
        out(granted("t1", X, 2, 1000), vec![ev_granted("a", "t1", X, 2, 1000)])
    );
    assert_eq!(r.waiters("a"), vec![w("t2", X)]);
    let expected = vec![ev_released("a", "t1"), ev_granted("a", "t2", X, 3, 1000)];
    assert_eq!(r.release(0, "a", "t1"), out(released(true), expected));
}

#[test]
fn an_upgrade_waits_at_the_front_keeping_its_shared_hold() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", S, 1000, 0);
    r.acquire(0, "a", "t2", S, 1000, 0);
    r.acquire(0, "a", "t3", X, 1000, 5000);
    assert_eq!(r.acquire(0, "a", "t1", X, 700, 5000), out(acquired(Queued), vec![]));
    assert_eq!(r.waiters("a"), vec![w("t1", X), w("t3", X)]);
    assert_eq!(r.holders("a"), vec![h("t1", S, 1, 1000), h("t2", S, 2, 1000)]);
    let expected = vec![ev_released("a", "t2"), ev_granted("a", "t1", X, 3, 700)];
    assert_eq!(r.release(0, "a", "t2"), out(released(true), expected));
    assert_eq!(r.holders("a"), vec![h("t1", X, 3, 700)]);
    let expected = vec![ev_released("a", "t1"), ev_granted("a", "t3", X, 4, 1000)];
    assert_eq!(r.release(0, "a", "t1"), out(released(true), expected));
}

#[test]
fn two_shared_holders_upgrading_deadlock_and_the_younger_is_aborted() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", S, 1000, 0);
    r.acquire(0, "a", "t2", S, 1000, 0);
    assert_eq!(r.acquire(0, "a", "t1", X, 1000, 5000), out(acquired(Queued), vec![]));
    // t2 queues behind t1's upgrade: each waits for the other's shared hold.
    let expected =
        vec![ev_deadlock("t2", "a", &["t2", "t1"]), ev_released("a", "t2"), ev_granted("a", "t1", X, 3, 1000)];
    assert_eq!(r.acquire(0, "a", "t2", X, 1000, 5000), out(acquired(Deadlock), expected));
    assert_eq!(r.holders("a"), vec![h("t1", X, 3, 1000)]);
    assert_eq!(r.locks().wait_for(), vec![]);
    assert_eq!(r.locks().deadlocks_resolved(), 1);
}

#[test]
fn an_older_upgrader_closing_the_cycle_is_granted_when_the_younger_is_aborted() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", S, 1000, 0);
    r.acquire(0, "a", "t2", S, 1000, 0);
    r.acquire(0, "a", "t2", X, 1000, 5000);
    let expected =
        vec![ev_deadlock("t2", "a", &["t1", "t2"]), ev_released("a", "t2"), ev_granted("a", "t1", X, 3, 1000)];
    assert_eq!(r.acquire(0, "a", "t1", X, 1000, 5000), out(granted("t1", X, 3, 1000), expected));
}

#[test]
fn a_try_lock_upgrade_conflicts_and_keeps_the_shared_hold() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", S, 1000, 0);
    r.acquire(0, "a", "t2", S, 1000, 0);
    assert_eq!(r.acquire(0, "a", "t1", X, 1000, 0), out(acquired(Conflict), vec![]));
    assert_eq!(r.holders("a"), vec![h("t1", S, 1, 1000), h("t2", S, 2, 1000)]);
    assert_eq!(r.waiters("a"), vec![]);
}

#[test]
fn a_pending_upgrade_whose_shared_hold_is_released_stays_queued_as_exclusive() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", S, 1000, 0);
    r.acquire(0, "a", "t2", S, 1000, 0);
    r.acquire(0, "a", "t1", X, 1000, 5000);
    assert_eq!(r.release(0, "a", "t1"), out(released(true), vec![ev_released("a", "t1")]));
    assert_eq!(r.waiters("a"), vec![w("t1", X)]);
    // t2 is now the only holder: its own upgrade goes through at once.
    assert_eq!(
        r.acquire(0, "a", "t2", X, 1000, 5000),
        out(granted("t2", X, 3, 1000), vec![ev_granted("a", "t2", X, 3, 1000)])
    );
    let expected = vec![ev_released("a", "t2"), ev_granted("a", "t1", X, 4, 1000)];
    assert_eq!(r.release(0, "a", "t2"), out(released(true), expected));
}
