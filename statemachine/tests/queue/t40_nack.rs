//! Nack: an in-flight message given back is Ready at once (keeping its place,
//! ahead of newer messages) or Delayed until `now + delay_ms`; only in-flight
//! messages count; a queue that never existed is `QueueNotFound`.

use dsync_statemachine::queue::{MessageState, QueueStats};
use dsync_statemachine::Response;

use crate::common::*;

#[test]
fn a_nack_without_delay_makes_the_message_ready_at_once_ahead_of_newer_ones() {
    let mut r = Replica::default();
    r.produce(0, "q", &["1", "2"]);
    r.consume(0, "q", "w", 1, 1000);
    let expected = out(Response::QueueRequeued { requeued: 1 }, vec![ev_ready("q", &[&id(1, 0)])]);
    assert_eq!(r.nack(10, "q", &[&id(1, 0)], 0), expected);
    assert_eq!(r.consume_ids(10, "q", 10, 1000), vec![id(1, 0), id(1, 1)]);
    let stats = QueueStats { in_flight: 2, produced_total: 2, consumed_total: 3, ..zero("q") };
    assert_eq!(r.stats("q"), Some(stats), "a nack is not a redelivery");
}

#[test]
fn a_nack_with_delay_hides_the_message_until_the_delay_passes() {
    let mut r = Replica::default();
    r.produce(0, "q", &["1"]);
    r.consume(0, "q", "w", 1, 1000);
    assert_eq!(r.nack(10, "q", &[&id(1, 0)], 50), out(Response::QueueRequeued { requeued: 1 }, vec![]));
    assert_eq!(r.states("q"), vec![(id(1, 0), MessageState::Delayed { until_ms: 60 })]);
    let stats = QueueStats { delayed: 1, produced_total: 1, consumed_total: 1, ..zero("q") };
    assert_eq!(r.stats("q"), Some(stats));
    assert_eq!(r.next_deadline_ms(), Some(60));
    assert_eq!(r.consume(59, "q", "w", 1, 1000), out(consumed(vec![]), vec![]));
    assert_eq!(r.tick(60), out(Response::Empty, vec![ev_ready("q", &[&id(1, 0)])]));
    assert_eq!(r.consume(60, "q", "w", 1, 1000).response, consumed(vec![delivery(&id(1, 0), "1", 2)]));
}

#[test]
fn only_in_flight_messages_are_requeued() {
    let mut r = Replica::default();
    r.produce(0, "q", &["a", "b", "c"]);
    let (a, b, c) = (id(1, 0), id(1, 1), id(1, 2));
    r.consume(0, "q", "w", 1, 1000);
    r.nack(0, "q", &[&a], 100); // a: Delayed
    r.consume(0, "q", "w", 1, 1000); // b: InFlight
    r.ack(0, "q", &[&c]); // c: acknowledged
    let ids = [a.as_str(), c.as_str(), b.as_str(), b.as_str(), "bogus", &id(99, 0)];
    let expected = out(Response::QueueRequeued { requeued: 1 }, vec![ev_ready("q", &[&b])]);
    assert_eq!(r.nack(1, "q", &ids, 0), expected);
    assert_eq!(r.states("q"), vec![(a, MessageState::Delayed { until_ms: 100 }), (b, MessageState::Ready)]);
}

#[test]
fn nacking_in_a_queue_that_never_existed_is_not_found() {
    let mut r = Replica::default();
    assert_eq!(r.nack(0, "nowhere", &[&id(1, 0)], 0), out(Response::QueueNotFound, vec![]));
    assert_eq!(r.nack(0, "nowhere", &[], 0), out(Response::QueueNotFound, vec![]));
    r.produce(0, "q", &["1"]);
    assert_eq!(r.nack(0, "q", &[], 0), out(Response::QueueRequeued { requeued: 0 }, vec![]));
}

#[test]
fn a_huge_delay_saturates() {
    let mut r = Replica::default();
    r.produce(0, "q", &["1"]);
    r.consume(10, "q", "w", 1, 1000);
    r.nack(10, "q", &[&id(1, 0)], u64::MAX);
    assert_eq!(r.states("q"), vec![(id(1, 0), MessageState::Delayed { until_ms: u64::MAX })]);
    assert_eq!(r.next_deadline_ms(), Some(u64::MAX));
}
