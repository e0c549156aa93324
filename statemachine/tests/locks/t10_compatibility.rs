//! Compatibility: shared with shared only; exclusive with nothing. A request
//! that cannot be granted with `wait_ms == 0` is a `Conflict`.

use dsync_statemachine::lock::AcquireOutcome::Conflict;

use crate::common::*;

#[test]
fn exclusive_excludes_every_other_request() {
    let mut r = Replica::default();
    assert_eq!(
        r.acquire(0, "a", "t1", X, 1000, 0),
        out(granted("t1", X, 1, 1000), vec![ev_granted("a", "t1", X, 1, 1000)])
    );
    assert_eq!(r.acquire(1, "a", "t2", S, 1000, 0), out(acquired(Conflict), vec![]));
    assert_eq!(r.acquire(2, "a", "t3", X, 1000, 0), out(acquired(Conflict), vec![]));
    assert_eq!(r.holders("a"), vec![h("t1", X, 1, 1000)]);
}

#[test]
fn shared_holders_coexist_and_keep_exclusive_out() {
    let mut r = Replica::default();
    assert_eq!(
        r.acquire(0, "a", "t1", S, 1000, 0),
        out(granted("t1", S, 1, 1000), vec![ev_granted("a", "t1", S, 1, 1000)])
    );
    assert_eq!(
        r.acquire(5, "a", "t2", S, 1000, 0),
        out(granted("t2", S, 2, 1005), vec![ev_granted("a", "t2", S, 2, 1005)])
    );
    assert_eq!(r.acquire(6, "a", "t3", X, 1000, 0), out(acquired(Conflict), vec![]));
    assert_eq!(r.holders("a"), vec![h("t1", S, 1, 1000), h("t2", S, 2, 1005)]);
}

#[test]
fn try_lock_conflict_leaves_no_trace() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", X, 1000, 0);
    let before = r.locks().clone();
    assert_eq!(r.acquire(1, "a", "t2", S, 1000, 0), out(acquired(Conflict), vec![]));
    // No waiter, no edge, no owner record: the table is exactly as before.
    assert_eq!(r.locks(), &before);
    assert_eq!(r.locks().wait_for(), vec![]);
}

#[test]
fn locks_of_different_resources_are_independent() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", X, 1000, 0);
    assert_eq!(
        r.acquire(0, "b", "t2", X, 1000, 0),
        out(granted("t2", X, 2, 1000), vec![ev_granted("b", "t2", X, 2, 1000)])
    );
    assert_eq!(r.locks().hold_count(), 2);
}
