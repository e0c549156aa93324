//! Dead-lettering: a message given back after `max_deliveries` deliveries
//! moves to `<queue>.dlq` with the same id, key and body and its delivery
//! count reset; messages of a `.dlq` queue are never dead-lettered again.

use dsync_statemachine::queue::{Delivery, MessageState, QueueStats};
use dsync_statemachine::Response;

use crate::common::*;

#[test]
fn after_max_deliveries_a_message_moves_to_the_dead_letter_queue_with_its_id() {
    let mut r = Replica::default();
    r.produce_with(0, "q", vec![msg(Some("k"), "{\"n\":1}")], 2);
    let m = id(1, 0);
    r.consume(0, "q", "w", 1, 100);
    assert_eq!(r.tick(100), out(Response::Empty, vec![ev_ready("q", &[&m])]));
    r.consume(100, "q", "w", 1, 100);
    // Delivered twice of two: the second give-back dead-letters it.
    assert_eq!(r.tick(200), out(Response::Empty, vec![ev_dead_lettered("q", &m)]));
    let source =
        QueueStats { dead_lettered: 1, produced_total: 1, consumed_total: 2, redelivered_total: 1, ..zero("q") };
    assert_eq!(r.stats("q"), Some(source));
    assert_eq!(r.stats("q.dlq"), Some(QueueStats { ready: 1, produced_total: 1, ..zero("q.dlq") }));
    assert_eq!(r.messages("q"), vec![]);
    let dead = &r.messages("q.dlq")[0];
    assert_eq!((dead.delivery_count, dead.max_deliveries, &dead.state), (0, 2, &MessageState::Ready));
    let expected = Delivery { id: m.clone(), key: Some("k".into()), body: "{\"n\":1}".into(), delivery_count: 1 };
    assert_eq!(r.consume(200, "q.dlq", "w", 10, 100).response, consumed(vec![expected]));
    assert_eq!(r.ack(200, "q.dlq", &[&m]).response, Response::QueueAcked { acked: 1 });
}

#[test]
fn dead_letter_queue_messages_are_redelivered_forever() {
    let mut r = Replica::default();
    r.produce_with(0, "q", vec![msg(None, "1")], 1);
    let m = id(1, 0);
    r.consume(0, "q", "w", 1, 10);
    assert_eq!(r.tick(10), out(Response::Empty, vec![ev_dead_lettered("q", &m)]));
    for round in 1..=4u64 {
        let now = 10 * round;
        let count = round as u32;
        assert_eq!(r.consume(now, "q.dlq", "w", 1, 10).response, consumed(vec![delivery(&m, "1", count)]));
        assert_eq!(r.tick(now + 10), out(Response::Empty, vec![ev_ready("q.dlq", &[&m])]));
    }
    let stats = QueueStats { ready: 1, produced_total: 1, consumed_total: 4, redelivered_total: 4, ..zero("q.dlq") };
    assert_eq!(r.stats("q.dlq"), Some(stats));
    assert_eq!(r.stats("q.dlq.dlq"), None);
}

#[test]
fn a_queue_named_like_a_dead_letter_queue_never_dead_letters() {
    let mut r = Replica::default();
    r.produce_with(0, "mail.dlq", vec![msg(None, "1")], 1);
    r.consume(0, "mail.dlq", "w", 1, 10);
    assert_eq!(r.tick(10), out(Response::Empty, vec![ev_ready("mail.dlq", &[&id(1, 0)])]));
    r.consume(10, "mail.dlq", "w", 1, 10);
    assert_eq!(r.nack(10, "mail.dlq", &[&id(1, 0)], 0).events, vec![ev_ready("mail.dlq", &[&id(1, 0)])]);
}

#[test]
fn dead_lettered_messages_queue_behind_the_dead_letter_queues_own() {
    let mut r = Replica::default();
    r.produce_with(0, "q", vec![msg(None, "1"), msg(None, "2")], 1);
    r.produce(0, "q.dlq", &["direct"]);
    r.consume(0, "q", "w", 2, 10);
    // Both due at 10: dead-lettered in timer order (id order here).
    assert_eq!(r.tick(10).events, vec![ev_dead_lettered("q", &id(1, 0)), ev_dead_lettered("q", &id(1, 1))]);
    let order = r.consume_ids(10, "q.dlq", 10, 10);
    assert_eq!(order, vec![id(2, 0), id(1, 0), id(1, 1)]);
    let seqs: Vec<u64> = r.messages("q.dlq").iter().map(|m| m.seq).collect();
    assert_eq!(seqs, vec![1, 2, 0], "listed by id, sequenced by arrival");
}

#[test]
fn a_nack_after_the_last_delivery_dead_letters_the_message() {
    let mut r = Replica::default();
    r.produce_with(0, "q", vec![msg(None, "1"), msg(None, "2")], 1);
    r.consume(0, "q", "w", 2, 1000);
    let expected = vec![ev_dead_lettered("q", &id(1, 1)), ev_dead_lettered("q", &id(1, 0))];
    assert_eq!(r.nack(5, "q", &[&id(1, 1), &id(1, 0)], 0), out(Response::QueueRequeued { requeued: 2 }, expected));
    assert_eq!(r.stats("q").map(|s| (s.in_flight, s.dead_lettered, s.redelivered_total)), Some((0, 2, 0)));
    assert_eq!(r.consume_ids(5, "q.dlq", 10, 10), vec![id(1, 1), id(1, 0)], "in nack order");
}

#[test]
fn max_deliveries_zero_dead_letters_at_the_first_give_back() {
    let mut r = Replica::default();
    r.produce_with(0, "q", vec![msg(None, "1")], 0);
    assert_eq!(r.consume(0, "q", "w", 1, 10).response, consumed(vec![delivery(&id(1, 0), "1", 1)]));
    assert_eq!(r.tick(10).events, vec![ev_dead_lettered("q", &id(1, 0))]);
}
