//! Expiry: run first on every entry, it handles due timers earliest first,
//! at most `EXPIRED_PER_ENTRY_MAX` per entry (later entries finish the rest);
//! its events come in a fixed order; `next_deadline_ms` is the earliest lock
//! or queue timer.

use dsync_statemachine::lock::{AcquireRequest, LockMode};
use dsync_statemachine::queue::{QueueStats, EXPIRED_PER_ENTRY_MAX};
use dsync_statemachine::{Command, Response};

use crate::common::*;

#[test]
fn one_entry_handles_at_most_the_bound_and_later_entries_finish_the_rest() {
    let mut r = Replica::default();
    let total = EXPIRED_PER_ENTRY_MAX + 10;
    let bodies = vec!["0"; total];
    r.produce(0, "q", &bodies);
    assert_eq!(r.consume_ids(0, "q", total as u32, 100).len(), total);
    let ids: Vec<String> = (0..total as u32).map(|position| id(1, position)).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let (first, rest) = ids.split_at(EXPIRED_PER_ENTRY_MAX);

    assert_eq!(r.tick(100), out(Response::Empty, vec![ev_ready("q", first)]));
    assert_eq!(r.stats("q").map(|s| (s.ready, s.in_flight)), Some((EXPIRED_PER_ENTRY_MAX as u64, 10)));
    assert_eq!(r.next_deadline_ms(), Some(100), "still due: the leader ticks again");
    assert_eq!(r.tick(100), out(Response::Empty, vec![ev_ready("q", rest)]));
    assert_eq!(r.next_deadline_ms(), None);
    let stats = QueueStats {
        ready: total as u64,
        produced_total: total as u64,
        consumed_total: total as u64,
        redelivered_total: total as u64,
        ..zero("q")
    };
    assert_eq!(r.stats("q"), Some(stats));
}

#[test]
fn dead_letters_come_first_in_timer_order_then_one_ready_event_per_queue_by_name() {
    let mut r = Replica::default();
    r.produce(0, "b", &["1", "2"]);
    r.produce(0, "a", &["1"]);
    r.produce_with(0, "c", vec![msg(None, "1")], 1);
    r.consume(0, "b", "w", 2, 50);
    r.nack(0, "b", &[&id(1, 1)], 150);
    r.consume(0, "a", "w", 1, 100);
    r.consume(0, "c", "w", 1, 100);
    // Timers: (50, b, 1.0) (100, a, 2.0) (100, c, 3.0) (150, b, 1.1).
    let expected =
        vec![ev_dead_lettered("c", &id(3, 0)), ev_ready("a", &[&id(2, 0)]), ev_ready("b", &[&id(1, 0), &id(1, 1)])];
    assert_eq!(r.tick(200), out(Response::Empty, expected));
    assert_eq!(r.stats("b").map(|s| (s.ready, s.redelivered_total)), Some((2, 1)), "the delay is no redelivery");
}

#[test]
fn nothing_due_changes_nothing() {
    let mut r = Replica::default();
    r.produce(0, "q", &["1"]);
    r.consume(0, "q", "w", 1, 100);
    let before = r.store.clone();
    assert_eq!(r.tick(99), out(Response::Empty, vec![]));
    assert_eq!(r.store, before);
}

#[test]
fn next_deadline_is_the_earliest_lock_or_queue_timer() {
    let mut r = Replica::default();
    assert_eq!(r.next_deadline_ms(), None);
    let request =
        AcquireRequest { resource: "r".into(), owner: "o".into(), mode: LockMode::Exclusive, ttl_ms: 500, wait_ms: 0 };
    r.apply(0, Command::LockAcquire(request));
    assert_eq!(r.next_deadline_ms(), Some(500));
    r.produce(0, "q", &["1", "2"]);
    assert_eq!(r.next_deadline_ms(), Some(500), "ready messages have no timer");
    r.consume(0, "q", "w", 1, 300);
    assert_eq!(r.next_deadline_ms(), Some(300));
    r.consume(0, "q", "w", 1, 200);
    assert_eq!(r.next_deadline_ms(), Some(200));
    r.nack(10, "q", &[&id(2, 1)], 1000);
    assert_eq!(r.next_deadline_ms(), Some(300));
    r.ack(10, "q", &[&id(2, 1)]);
    r.tick(300);
    assert_eq!(r.next_deadline_ms(), Some(500));
}
