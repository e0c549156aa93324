//! Produce and consume: ids in batch order, FIFO first deliveries, per-key
//! order, leases to the consumer, and what an unknown queue or `max == 0`
//! gives.

use std::collections::BTreeSet;

use dsync_statemachine::queue::{self, Delivery, MessageState, QueueStats};
use dsync_statemachine::Response;

use crate::common::*;

#[test]
fn produce_answers_the_ids_in_batch_order_and_emits_one_event() {
    let mut r = Replica::default();
    let ids = [id(1, 0), id(1, 1), id(1, 2)];
    let ids = ids.each_ref().map(String::as_str);
    assert_eq!(r.produce(0, "orders", &["1", "2", "3"]), out(produced(&ids), vec![ev_produced("orders", &ids)]));
    assert_eq!(r.stats("orders"), Some(QueueStats { ready: 3, produced_total: 3, ..zero("orders") }));
    let seqs: Vec<u64> = r.messages("orders").iter().map(|m| m.seq).collect();
    assert_eq!(seqs, vec![0, 1, 2]);
}

#[test]
fn first_deliveries_follow_production_order() {
    let mut r = Replica::default();
    r.produce(0, "q", &["1", "2"]);
    r.produce(0, "q", &["3"]);
    let first = vec![delivery(&id(1, 0), "1", 1), delivery(&id(1, 1), "2", 1)];
    assert_eq!(r.consume(10, "q", "w1", 2, 1000), out(consumed(first), vec![]));
    assert_eq!(r.consume(10, "q", "w2", 10, 1000), out(consumed(vec![delivery(&id(2, 0), "3", 1)]), vec![]));
    assert_eq!(r.consume(10, "q", "w3", 10, 1000), out(consumed(vec![]), vec![]));
    let stats = QueueStats { in_flight: 3, produced_total: 3, consumed_total: 3, ..zero("q") };
    assert_eq!(r.stats("q"), Some(stats));
}

#[test]
fn a_consumed_message_is_in_flight_for_its_consumer_until_now_plus_visibility() {
    let mut r = Replica::default();
    r.produce(0, "q", &["1", "2"]);
    r.consume(100, "q", "w1", 1, 250);
    assert_eq!(r.states("q"), vec![(id(1, 0), in_flight("w1", 350)), (id(1, 1), MessageState::Ready)]);
}

#[test]
fn messages_with_the_same_key_keep_their_order_even_when_given_back() {
    let mut r = Replica::default();
    let batch =
        vec![msg(Some("a"), "\"a1\""), msg(Some("b"), "\"b1\""), msg(Some("a"), "\"a2\""), msg(Some("b"), "\"b2\"")];
    r.produce_with(0, "q", batch, MAX_DELIVERIES);
    let keyed = |position, key: &str, body: &str, delivery_count| Delivery {
        id: id(1, position),
        key: Some(key.into()),
        body: body.into(),
        delivery_count,
    };
    assert_eq!(r.consume(1, "q", "w", 1, 1000).response, consumed(vec![keyed(0, "a", "\"a1\"", 1)]));
    // a1 is given back: it keeps its place, ahead of a2.
    r.nack(2, "q", &[&id(1, 0)], 0);
    let next = vec![keyed(0, "a", "\"a1\"", 2), keyed(1, "b", "\"b1\"", 1)];
    assert_eq!(r.consume(3, "q", "w", 2, 1000).response, consumed(next));
    r.ack(4, "q", &[&id(1, 0), &id(1, 1)]);
    let rest = vec![keyed(2, "a", "\"a2\"", 1), keyed(3, "b", "\"b2\"", 1)];
    assert_eq!(r.consume(5, "q", "w", 10, 1000).response, consumed(rest));
}

#[test]
fn consuming_an_unknown_queue_or_zero_messages_gives_nothing() {
    let mut r = Replica::default();
    assert_eq!(r.consume(0, "nowhere", "w", 10, 1000), out(consumed(vec![]), vec![]));
    assert_eq!(r.stats("nowhere"), None, "consume does not create a queue");
    r.produce(0, "q", &["1"]);
    assert_eq!(r.consume(0, "q", "w", 0, 1000), out(consumed(vec![]), vec![]));
    assert_eq!(r.stats("q"), Some(QueueStats { ready: 1, produced_total: 1, ..zero("q") }));
}

#[test]
fn an_empty_produce_changes_nothing() {
    let mut r = Replica::default();
    assert_eq!(r.produce(0, "q", &[]), out(Response::QueueProduced { ids: vec![] }, vec![]));
    assert_eq!(r.stats("q"), None);
    assert!(r.store.entries.is_empty());
}

#[test]
fn message_ids_are_unique_parseable_and_increasing() {
    let mut r = Replica::default();
    let mut ids = Vec::new();
    for (queue, size) in [("a", 1), ("b", 3), ("a", 2)] {
        let bodies = vec!["0"; size];
        let Response::QueueProduced { ids: batch } = r.produce(0, queue, &bodies).response else { panic!() };
        let index = r.index;
        let parsed: Vec<_> = batch.iter().map(|id| queue::parse_message_id(id)).collect();
        assert_eq!(parsed, (0..size as u32).map(|position| Some((index, position))).collect::<Vec<_>>());
        ids.extend(batch);
        r.consume(0, queue, "w", 1, 10);
    }
    assert_eq!(ids.iter().collect::<BTreeSet<_>>().len(), ids.len());
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
    assert!(ids
        .iter()
        .all(|id| id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())));
}
