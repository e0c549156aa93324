//! Fencing tokens: the table counts the tokens it has issued, and every
//! grant (immediate, from the queue, an upgrade) takes the next one. So
//! tokens strictly increase across all grants of every resource: grants
//! made together by one entry get consecutive tokens, and a grant that its
//! own entry takes back (released by its owner, aborted as a deadlock
//! victim, or replaced by its owner's upgrade) keeps a token of its own,
//! below the next grant's. Only a retry of what is held returns an existing
//! token.

use dsync_statemachine::lock::AcquireOutcome::Conflict;
use dsync_statemachine::{Event, Output, State};

use crate::common::*;

/// Every grant in `outputs` as (resource, token), in the order made.
fn grants(outputs: &[Output]) -> Vec<(String, u64)> {
    let events = outputs.iter().flat_map(|output| &output.events);
    let granted = events.filter_map(|event| match event {
        Event::LockGranted { resource, fencing_token, .. } => Some((resource.clone(), *fencing_token)),
        _ => None,
    });
    granted.collect()
}

#[test]
fn tokens_strictly_increase_across_all_grants_of_every_resource() {
    let mut r = Replica::default();
    let mut outputs = vec![
        r.acquire(0, "a", "t1", S, 100, 0),
        r.acquire(0, "a", "t2", S, 100, 0),
        r.acquire(0, "a", "t3", X, 100, 1000),
        r.acquire(0, "a", "t4", S, 100, 1000),
        r.acquire(0, "a", "t5", S, 100, 1000),
        r.acquire(0, "b", "t1", X, 100, 0),
        r.release(10, "a", "t1"),
        r.tick(100), // t2's lease and t1's hold of b end: t3 gets a
        r.acquire(120, "a", "t1", X, 100, 1000),
        r.release(130, "a", "t3"),               // t4 and t5 together
        r.acquire(130, "a", "t4", X, 100, 1000), // upgrade waits for t5
        r.tick(230),                             // every lease ends; t4's upgrade becomes a plain wait and is granted
        r.release(240, "a", "t4"),
    ];
    outputs.push(r.tick(1_000));
    // One count for the whole table: each grant, of any resource, gets the
    // token after the previous grant's.
    let all = grants(&outputs);
    let tokens: Vec<u64> = all.iter().map(|g| g.1).collect();
    assert_eq!(tokens, (1..=8).collect::<Vec<u64>>());
    let tokens_of_a: Vec<u64> = all.iter().filter(|g| g.0 == "a").map(|g| g.1).collect();
    assert_eq!(tokens_of_a, vec![1, 2, 4, 5, 6, 7, 8]);
}

#[test]
fn shared_waiters_granted_together_get_consecutive_tokens_in_grant_order() {
    let mut r = Replica::default();
    r.acquire(0, "a", "w", X, 100, 0);
    for owner in ["t3", "t1", "t2"] {
        r.acquire(0, "a", owner, S, 1000, 5000);
    }
    let expected = vec![
        ev_released("a", "w"),
        ev_granted("a", "t3", S, 2, 1000),
        ev_granted("a", "t1", S, 3, 1000),
        ev_granted("a", "t2", S, 4, 1000),
    ];
    assert_eq!(r.release(0, "a", "w"), out(released(true), expected));
    assert_eq!(r.holders("a"), vec![h("t3", S, 2, 1000), h("t1", S, 3, 1000), h("t2", S, 4, 1000)]);
}

#[test]
fn grants_of_one_entry_on_several_resources_get_consecutive_tokens() {
    let mut r = Replica::default();
    r.acquire(0, "b", "h", X, 100, 0);
    r.acquire(0, "a", "h", X, 100, 0);
    r.acquire(0, "b", "t1", X, 1000, 5000);
    r.acquire(0, "a", "t2", X, 1000, 5000);
    // Both leases end at once; grants follow in resource order.
    let expected = vec![
        ev_expired("a", "h"),
        ev_expired("b", "h"),
        ev_granted("a", "t2", X, 3, 1100),
        ev_granted("b", "t1", X, 4, 1100),
    ];
    assert_eq!(r.tick(100), out(dsync_statemachine::Response::Empty, expected));
}

#[test]
fn a_grant_released_by_the_entry_that_made_it_keeps_its_own_token() {
    let mut r = Replica::default();
    r.acquire(0, "a", "h", X, 100, 0);
    r.acquire(0, "a", "t1", X, 1000, 5000);
    r.acquire(0, "a", "t2", X, 1000, 5000);
    // Entry 4: h's lease ends and t1 is granted, then t1's own release
    // (sent while it waited) hands the lock to t2, by the same entry.
    let expected = vec![
        ev_expired("a", "h"),
        ev_granted("a", "t1", X, 2, 1100),
        ev_released("a", "t1"),
        ev_granted("a", "t2", X, 3, 1100),
    ];
    assert_eq!(r.release(100, "a", "t1"), out(released(true), expected));
    assert_eq!(r.holders("a"), vec![h("t2", X, 3, 1100)]);
}

#[test]
fn an_upgrade_in_the_entry_that_granted_the_shared_hold_gets_the_next_token() {
    let mut r = Replica::default();
    r.acquire(0, "a", "h", X, 100, 0);
    r.acquire(0, "a", "t1", S, 1000, 5000);
    let expected = vec![ev_expired("a", "h"), ev_granted("a", "t1", S, 2, 1100), ev_granted("a", "t1", X, 3, 1100)];
    assert_eq!(r.acquire(100, "a", "t1", X, 1000, 0), out(granted("t1", X, 3, 1100), expected));
    assert_eq!(r.holders("a"), vec![h("t1", X, 3, 1100)]);
}

#[test]
fn a_grant_whose_holder_its_entry_aborts_as_a_deadlock_victim_keeps_its_own_token() {
    let mut r = Replica::default();
    r.acquire(0, "b", "o", X, 10_000, 0); // o is the oldest
    r.acquire(0, "a", "h", X, 100, 0);
    r.acquire(0, "a", "v", X, 1000, 5000);
    r.acquire(0, "b", "v", X, 1000, 5000);
    // Entry 5: h's lease ends and v is granted a; then o waiting for a
    // closes o -> v -> o, v (the younger) is aborted and o gets a.
    let expected = vec![
        ev_expired("a", "h"),
        ev_granted("a", "v", X, 3, 1100),
        ev_deadlock("v", "b", &["o", "v"]),
        ev_released("a", "v"),
        ev_granted("a", "o", X, 4, 1100),
    ];
    assert_eq!(r.acquire(100, "a", "o", X, 1000, 5000), out(granted("o", X, 4, 1100), expected));
    assert_eq!(r.holders("a"), vec![h("o", X, 4, 1100)]);
}

#[test]
fn a_retry_returns_the_held_token_and_takes_none() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", X, 1000, 0);
    assert_eq!(r.acquire(10, "a", "t1", X, 1000, 0), out(granted("t1", X, 1, 1010), vec![]));
    // A conflict takes none either.
    assert_eq!(r.acquire(10, "a", "t2", X, 1000, 0), out(acquired(Conflict), vec![]));
    assert_eq!(
        r.acquire(20, "b", "t2", X, 1000, 0),
        out(granted("t2", X, 2, 1020), vec![ev_granted("b", "t2", X, 2, 1020)])
    );
}

#[test]
fn the_count_survives_a_snapshot_even_with_nothing_held() {
    let mut r = Replica::default();
    r.acquire(0, "a", "t1", X, 1000, 0);
    r.acquire(0, "a", "t1", S, 1000, 0); // a retry
    r.release(0, "a", "t1");
    assert_eq!(r.locks().held(), vec![]);
    r.state = State::from_snapshot(&r.state.to_snapshot()).expect("snapshot loads");
    assert_eq!(
        r.acquire(0, "a", "t2", X, 1000, 0),
        out(granted("t2", X, 2, 1000), vec![ev_granted("a", "t2", X, 2, 1000)])
    );
}
