//! Visibility leases: a consumed message that is not acknowledged before
//! `now + visibility_ms` goes back to Ready (event `QueueReady`,
//! `redelivered_total`), keeping its place in the queue, and is delivered
//! again with its delivery count one higher.

use dsync_statemachine::queue::{MessageState, QueueStats};
use dsync_statemachine::Response;

use crate::common::*;

#[test]
fn an_unacked_message_comes_back_when_its_visibility_ends_and_counts_the_delivery() {
    let mut r = Replica::default();
    r.produce(0, "q", &["1"]);
    r.consume(0, "q", "w1", 1, 100);
    assert_eq!(r.tick(99), out(Response::Empty, vec![]));
    assert_eq!(r.tick(100), out(Response::Empty, vec![ev_ready("q", &[&id(1, 0)])]));
    let stats = QueueStats { ready: 1, produced_total: 1, consumed_total: 1, redelivered_total: 1, ..zero("q") };
    assert_eq!(r.stats("q"), Some(stats));
    assert_eq!(r.consume(100, "q", "w2", 1, 100).response, consumed(vec![delivery(&id(1, 0), "1", 2)]));
    assert_eq!(r.tick(200), out(Response::Empty, vec![ev_ready("q", &[&id(1, 0)])]));
    assert_eq!(r.consume(200, "q", "w3", 1, 100).response, consumed(vec![delivery(&id(1, 0), "1", 3)]));
    let stats = QueueStats { in_flight: 1, produced_total: 1, consumed_total: 3, redelivered_total: 2, ..zero("q") };
    assert_eq!(r.stats("q"), Some(stats));
}

#[test]
fn a_returned_message_comes_before_newer_ones_and_expiry_runs_before_the_command() {
    let mut r = Replica::default();
    r.produce(0, "q", &["1"]);
    r.consume(0, "q", "w", 1, 100);
    r.produce(50, "q", &["2"]);
    // Entry 4's consume sees the table after message 1's lease ended.
    let deliveries = vec![delivery(&id(1, 0), "1", 2), delivery(&id(3, 0), "2", 1)];
    assert_eq!(r.consume(150, "q", "w", 10, 100), out(consumed(deliveries), vec![ev_ready("q", &[&id(1, 0)])]));
}

#[test]
fn an_acked_message_never_comes_back() {
    let mut r = Replica::default();
    r.produce(0, "q", &["1", "2"]);
    r.consume(0, "q", "w", 2, 100);
    r.ack(50, "q", &[&id(1, 0)]);
    assert_eq!(r.tick(1000), out(Response::Empty, vec![ev_ready("q", &[&id(1, 1)])]));
    assert_eq!(r.states("q"), vec![(id(1, 1), MessageState::Ready)]);
    assert_eq!(r.next_deadline_ms(), None);
}

#[test]
fn the_leader_clock_going_back_does_not_shorten_or_lengthen_a_lease() {
    let mut r = Replica::default();
    r.produce(1000, "q", &["1"]);
    // A new leader with a slower clock: "now" stays 1000.
    r.consume(900, "q", "w", 1, 100);
    assert_eq!(r.states("q"), vec![(id(1, 0), in_flight("w", 1100))]);
    assert_eq!(r.tick(1099), out(Response::Empty, vec![]));
    assert_eq!(r.tick(1100), out(Response::Empty, vec![ev_ready("q", &[&id(1, 0)])]));
}
