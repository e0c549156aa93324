//! Ack: removes a message in any state and counts what it really removed;
//! repeating it, unknown or malformed ids count nothing; a queue that never
//! existed is `QueueNotFound`.

use dsync_statemachine::queue::QueueStats;
use dsync_statemachine::Response;

use crate::common::*;

#[test]
fn ack_removes_messages_in_any_state_and_counts_them() {
    let mut r = Replica::default();
    r.produce(0, "q", &["ready", "in flight", "delayed", "kept"]);
    let ids: Vec<String> = (0..4).map(|position| id(1, position)).collect();
    r.consume(0, "q", "w", 3, 1000);
    r.nack(0, "q", &[&ids[2]], 500);
    r.nack(0, "q", &[&ids[0]], 0);
    let stats = QueueStats { ready: 2, in_flight: 1, delayed: 1, produced_total: 4, consumed_total: 3, ..zero("q") };
    assert_eq!(r.stats("q"), Some(stats));
    assert_eq!(r.ack(1, "q", &[&ids[0], &ids[1], &ids[2]]), out(Response::QueueAcked { acked: 3 }, vec![]));
    let stats = QueueStats { ready: 1, produced_total: 4, consumed_total: 3, acked_total: 3, ..zero("q") };
    assert_eq!(r.stats("q"), Some(stats));
    assert_eq!(r.next_deadline_ms(), None, "their timers went with them");
    assert_eq!(r.consume_ids(1, "q", 10, 1000), vec![ids[3].clone()]);
}

#[test]
fn ack_is_idempotent_and_ignores_unknown_and_malformed_ids() {
    let mut r = Replica::default();
    r.produce(0, "q", &["1", "2"]);
    let (a, b) = (id(1, 0), id(1, 1));
    assert_eq!(r.ack(0, "q", &[&a, &a]).response, Response::QueueAcked { acked: 1 });
    assert_eq!(r.ack(0, "q", &[&a]).response, Response::QueueAcked { acked: 0 });
    // Unknown ids, then near-misses of b: too short, too long, signed.
    let junk =
        [id(1, 7), id(42, 0), "".into(), "not-an-id".into(), b[1..].into(), format!("{b}0"), format!("+{}", &b[1..])];
    assert_eq!(r.ack(0, "q", &junk.each_ref().map(String::as_str)).response, Response::QueueAcked { acked: 0 });
    assert_eq!(r.ack(0, "q", &[]).response, Response::QueueAcked { acked: 0 });
    assert_eq!(r.stats("q").map(|s| (s.ready, s.acked_total)), Some((1, 1)));
}

#[test]
fn an_id_acks_only_in_its_own_queue() {
    let mut r = Replica::default();
    r.produce(0, "a", &["1"]);
    r.produce(0, "b", &["2"]);
    assert_eq!(r.ack(0, "b", &[&id(1, 0)]).response, Response::QueueAcked { acked: 0 });
    assert_eq!(r.ack(0, "a", &[&id(1, 0)]).response, Response::QueueAcked { acked: 1 });
}

#[test]
fn acking_in_a_queue_that_never_existed_is_not_found() {
    let mut r = Replica::default();
    assert_eq!(r.ack(0, "nowhere", &[&id(1, 0)]), out(Response::QueueNotFound, vec![]));
    assert_eq!(r.ack(0, "nowhere", &[]), out(Response::QueueNotFound, vec![]));
    // A queue emptied by acks still exists.
    r.produce(0, "q", &["1"]);
    r.ack(0, "q", &[&id(3, 0)]);
    assert_eq!(r.ack(0, "q", &[&id(3, 0)]), out(Response::QueueAcked { acked: 0 }, vec![]));
}

#[test]
fn a_redelivered_message_keeps_its_id_for_the_ack() {
    let mut r = Replica::default();
    r.produce(0, "q", &["1"]);
    r.consume(0, "q", "w1", 1, 10);
    assert_eq!(r.consume_ids(10, "q", 1, 10), vec![id(1, 0)]);
    assert_eq!(r.ack(15, "q", &[&id(1, 0)]).response, Response::QueueAcked { acked: 1 });
    let stats = QueueStats { produced_total: 1, consumed_total: 2, acked_total: 1, redelivered_total: 1, ..zero("q") };
    assert_eq!(r.stats("q"), Some(stats));
}
