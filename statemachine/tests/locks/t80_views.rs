//! Read-only views (`GET /locks`, `GET /locks/wait_for`) and snapshots.

use dsync_statemachine::lock::{Grant, LockMode, LockTable, LockView, WaitEdge, Waiter};
use dsync_statemachine::State;

use crate::common::*;

#[test]
fn view_lists_holders_in_grant_order_and_waiters_in_queue_order() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t2", S, 1000, 0);
    r.acquire(5, "a", "t1", S, 1000, 0);
    r.acquire(7, "a", "t3", X, 100, 400);
    let grant = |owner: &str, fencing_token, expires_at_ms| Grant {
        owner: owner.into(),
        mode: S,
        fencing_token,
        expires_at_ms,
    };
    let expected = LockView {
        resource: "a".into(),
        mode: Some(LockMode::Shared),
        holders: vec![grant("t2", 1, 1000), grant("t1", 2, 1005)],
        waiters: vec![Waiter { owner: "t3".into(), mode: X, since_ms: 7, deadline_ms: 407, ttl_ms: 100 }],
    };
    assert_eq!(r.locks().view("a"), Some(expected));
    assert_eq!(r.locks().view("b"), None);
}

#[test]
fn held_lists_only_locks_with_holders_by_name() {
    let mut r = Replica::default();
    r.acquire(0, "b", "t1", X, 1000, 0);
    r.acquire(0, "b", "t2", X, 1000, 5000);
    r.acquire(0, "a", "t2", X, 1000, 0);
    r.acquire(0, "c", "t3", S, 1000, 0);
    let held: Vec<String> = r.locks().held().into_iter().map(|v| v.resource).collect();
    assert_eq!(held, vec!["a", "b", "c"]);
    assert_eq!(r.locks().hold_count(), 3);
}

#[test]
fn wait_for_lists_each_edge_once_sorted() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", S, 1000, 0);
    r.acquire(0, "a", "t2", S, 1000, 0);
    r.acquire(0, "a", "t3", X, 1000, 5000);
    r.acquire(0, "a", "t1", X, 1000, 5000);
    let edge =
        |waiter: &str, holder: &str| WaitEdge { waiter: waiter.into(), holder: holder.into(), resource: "a".into() };
    // t3 waits for t1 both as a shared holder and as the upgrade ahead: one edge.
    assert_eq!(r.locks().wait_for(), vec![edge("t1", "t2"), edge("t3", "t1"), edge("t3", "t2")]);
}

#[test]
fn a_snapshot_round_trip_gives_an_equal_table() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", S, 1000, 0);
    r.acquire(0, "a", "t2", S, 1000, 0);
    r.acquire(0, "a", "t3", X, 1000, 5000);
    r.acquire(0, "a", "t1", X, 1000, 5000);
    r.acquire(0, "b", "t2", X, 1000, 0);
    r.acquire(0, "b", "t4", X, 1000, 5000);
    r.acquire(0, "a", "t2", X, 1000, 5000); // two upgraders: t2 is aborted
    assert_eq!(r.waiters("a"), vec![w("t3", X)]);
    assert_eq!(r.locks().deadlocks_resolved(), 1);
    let loaded = State::from_snapshot(&r.state.to_snapshot()).expect("snapshot loads");
    assert_eq!(loaded, r.state);
    assert_eq!(loaded.next_deadline_ms(&r.store), r.state.next_deadline_ms(&r.store));
}

#[test]
fn a_snapshot_with_conflicting_holders_is_refused() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", S, 1000, 0);
    r.acquire(0, "a", "t2", S, 1000, 0);
    let json = serde_json::to_string(r.locks()).unwrap();
    let damaged = json.replacen("\"shared\"", "\"exclusive\"", 1);
    assert_ne!(json, damaged);
    let error = serde_json::from_str::<LockTable>(&damaged).unwrap_err().to_string();
    assert!(error.contains("exclusive hold shared with others"), "{error}");
}

#[test]
fn a_snapshot_with_a_held_token_not_yet_issued_is_refused() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", X, 1000, 0);
    r.acquire(0, "b", "t2", X, 1000, 0);
    let mut json = serde_json::to_value(r.locks()).unwrap();
    assert_eq!(json["fencing_tokens_issued"], 2);
    json["fencing_tokens_issued"] = serde_json::json!(1);
    let error = serde_json::from_value::<LockTable>(json).unwrap_err().to_string();
    assert!(error.contains("reused or not issued"), "{error}");
}

#[test]
fn a_snapshot_missing_an_owners_age_is_refused() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", X, 1000, 0);
    let mut json = serde_json::to_value(r.locks()).unwrap();
    json["owners"] = serde_json::json!({});
    let error = serde_json::from_value::<LockTable>(json).unwrap_err().to_string();
    assert!(error.contains("owner records do not match"), "{error}");
}
