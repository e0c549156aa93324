//! Leases and deadlines: `renew` moves every lease of an owner; `expire`
//! (run first on every entry) releases holds whose lease ran out and drops
//! waiters past their deadline, then grants; `next_deadline_ms` tells the
//! leader when to tick.

use dsync_statemachine::lock::AcquireOutcome::{Conflict, Queued};
use dsync_statemachine::Response;

use crate::common::*;

#[test]
fn renew_sets_every_lease_of_the_owner_and_counts_them() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", X, 100, 0);
    r.acquire(0, "b", "t1", S, 100, 0);
    r.acquire(0, "b", "t2", S, 100, 0);
    assert_eq!(r.renew(50, "t1", 1000), out(Response::LockRenewed { renewed: 2 }, vec![]));
    assert_eq!(r.holders("a"), vec![h("t1", X, 1, 1050)]);
    assert_eq!(r.holders("b"), vec![h("t1", S, 2, 1050), h("t2", S, 3, 100)]);
    assert_eq!(r.renew(50, "stranger", 1000), out(Response::LockRenewed { renewed: 0 }, vec![]));
    // Only t2's lease runs out at 100.
    assert_eq!(r.tick(100), out(Response::Empty, vec![ev_expired("b", "t2")]));
    // A shorter ttl shortens the lease: it is set to now + ttl.
    assert_eq!(r.renew(200, "t1", 10), out(Response::LockRenewed { renewed: 2 }, vec![]));
    assert_eq!(r.holders("a"), vec![h("t1", X, 1, 210)]);
}

#[test]
fn an_expired_lease_is_released_and_the_next_waiter_granted_with_the_next_token() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", X, 100, 0);
    r.acquire(10, "a", "t2", X, 500, 10_000);
    assert_eq!(r.tick(99), out(Response::Empty, vec![]));
    let expected = vec![ev_expired("a", "t1"), ev_granted("a", "t2", X, 2, 600)];
    assert_eq!(r.tick(100), out(Response::Empty, expected));
    assert_eq!(r.holders("a"), vec![h("t2", X, 2, 600)]);
}

#[test]
fn expiry_runs_before_the_entrys_own_command() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", X, 100, 0);
    r.acquire(0, "a", "t2", X, 500, 10_000);
    // Entry 3's try-lock sees the table after t1's lease ended and t2 got it.
    let expected = vec![ev_expired("a", "t1"), ev_granted("a", "t2", X, 2, 650)];
    assert_eq!(r.acquire(150, "a", "t3", S, 500, 0), out(acquired(Conflict), expected));
}

#[test]
fn a_waiter_past_its_deadline_times_out_and_is_never_granted() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", X, 1000, 0);
    r.acquire(0, "a", "t2", X, 1000, 200);
    r.acquire(0, "a", "t3", S, 1000, 5000);
    assert_eq!(r.tick(200), out(Response::Empty, vec![ev_timed_out("a", "t2")]));
    assert_eq!(r.waiters("a"), vec![w("t3", S)]);
    let expected = vec![ev_released("a", "t1"), ev_granted("a", "t3", S, 2, 1300)];
    assert_eq!(r.release(300, "a", "t1"), out(released(true), expected));
    assert_eq!(r.locks().view("a").unwrap().holders.iter().filter(|g| g.owner == "t2").count(), 0);
}

#[test]
fn a_waiter_due_when_the_lease_ends_times_out_instead_of_being_granted() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", X, 100, 0);
    r.acquire(0, "a", "t2", X, 50, 100);
    r.acquire(0, "a", "t3", X, 50, 1000);
    let expected = vec![ev_expired("a", "t1"), ev_timed_out("a", "t2"), ev_granted("a", "t3", X, 2, 150)];
    assert_eq!(r.tick(100), out(Response::Empty, expected));
}

#[test]
fn a_front_exclusive_waiter_timing_out_lets_the_shared_waiters_behind_it_in() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", S, 1000, 0);
    r.acquire(0, "a", "t2", X, 1000, 100);
    assert_eq!(r.acquire(0, "a", "t3", S, 1000, 1000), out(acquired(Queued), vec![]));
    let expected = vec![ev_timed_out("a", "t2"), ev_granted("a", "t3", S, 2, 1100)];
    assert_eq!(r.tick(100), out(Response::Empty, expected));
}

#[test]
fn a_timed_out_upgrade_keeps_its_shared_hold() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", S, 1000, 0);
    r.acquire(0, "a", "t2", S, 1000, 0);
    r.acquire(0, "a", "t1", X, 1000, 100);
    assert_eq!(r.tick(100), out(Response::Empty, vec![ev_timed_out("a", "t1")]));
    assert_eq!(r.holders("a"), vec![h("t1", S, 1, 1000), h("t2", S, 2, 1000)]);
}

#[test]
fn expiries_come_out_in_time_then_resource_order() {
    let mut r = Replica::default();
    r.acquire(0, "b", "t1", X, 80, 0);
    r.acquire(0, "a", "t1", X, 80, 0);
    r.acquire(0, "c", "t2", X, 50, 0);
    let expected = vec![ev_expired("c", "t2"), ev_expired("a", "t1"), ev_expired("b", "t1")];
    assert_eq!(r.tick(100), out(Response::Empty, expected));
    assert_eq!(r.locks().hold_count(), 0);
    // Nothing is remembered but the count of fencing tokens issued.
    let expected =
        serde_json::json!({ "resources": {}, "owners": {}, "deadlocks_resolved": 0, "fencing_tokens_issued": 3 });
    assert_eq!(serde_json::to_value(r.locks()).unwrap(), expected);
}

#[test]
fn next_deadline_is_the_earliest_lease_end_or_wait_deadline() {
    let mut r = Replica::default();
    assert_eq!(r.locks().next_deadline_ms(), None);
    r.acquire(0, "a", "t1", X, 1000, 0);
    assert_eq!(r.state.next_deadline_ms(&r.store), Some(1000));
    r.acquire(0, "a", "t2", X, 1000, 300);
    assert_eq!(r.state.next_deadline_ms(&r.store), Some(300));
    r.tick(300);
    assert_eq!(r.state.next_deadline_ms(&r.store), Some(1000));
    r.renew(400, "t1", 50);
    assert_eq!(r.state.next_deadline_ms(&r.store), Some(450));
    r.release(400, "a", "t1");
    assert_eq!(r.state.next_deadline_ms(&r.store), None);
}
