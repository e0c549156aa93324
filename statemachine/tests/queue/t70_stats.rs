//! Stats and listings: per-queue depths and totals, every queue by name
//! (names are arbitrary UTF-8 and never run into each other), and paged
//! message listings.

use dsync_statemachine::queue::{self, MessageState, QueueStats};

use crate::common::*;

#[test]
fn stats_follow_a_queue_through_its_life() {
    let mut r = Replica::default();
    assert_eq!(r.stats("q"), None);
    r.produce_with(0, "q", vec![msg(None, "1"), msg(None, "2"), msg(None, "3"), msg(None, "4")], 2);
    let (a, b, c) = (id(1, 0), id(1, 1), id(1, 2));
    r.consume(0, "q", "w", 3, 100); // a, b, c in flight
    r.ack(10, "q", &[&a]);
    r.nack(10, "q", &[&b], 50); // b delayed until 60
    r.tick(100); // c back (redelivered); b ready since 60
    r.consume(100, "q", "w", 1, 100); // b again (2 of 2)
    r.tick(200); // b dead-lettered
    let stats = QueueStats {
        ready: 2,
        in_flight: 0,
        delayed: 0,
        dead_lettered: 1,
        produced_total: 4,
        consumed_total: 4,
        acked_total: 1,
        redelivered_total: 1,
        ..zero("q")
    };
    assert_eq!(r.stats("q"), Some(stats));
    assert_eq!(r.states("q"), vec![(c, MessageState::Ready), (id(1, 3), MessageState::Ready)]);
    assert_eq!(r.states("q.dlq"), vec![(b, MessageState::Ready)]);
}

#[test]
fn all_stats_lists_every_queue_by_name_and_odd_names_stay_apart() {
    let mut r = Replica::default();
    let names = ["b", "a/b", "a", "a\0", "é", "a.dlq/x", ""];
    for name in names {
        r.produce(0, name, &["1"]);
    }
    r.produce(0, "a", &["2"]);
    let listed: Vec<(String, u64)> = queue::all_stats(&r.store).into_iter().map(|s| (s.queue, s.ready)).collect();
    let mut expected: Vec<(String, u64)> = names.iter().map(|n| (n.to_string(), 1 + u64::from(*n == "a"))).collect();
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(r.consume_ids(0, "a", 10, 10).len(), 2, "only a's own messages");
    assert_eq!(r.stats("a\0").map(|s| s.ready), Some(1));
}

#[test]
fn messages_can_be_listed_a_page_at_a_time() {
    let mut r = Replica::default();
    r.produce(0, "q", &["1", "2", "3"]);
    r.produce(0, "q/x", &["other"]);
    let page = |after: Option<&str>| -> Vec<String> {
        queue::messages(&r.store, "q", after, 2).into_iter().map(|m| m.id).collect()
    };
    assert_eq!(page(None), vec![id(1, 0), id(1, 1)]);
    assert_eq!(page(Some(&id(1, 1))), vec![id(1, 2)]);
    assert_eq!(page(Some(&id(1, 2))), Vec::<String>::new());
    assert_eq!(page(Some("junk")), Vec::<String>::new());
}

#[test]
fn stats_serialise_with_the_api_field_names() {
    let stats = QueueStats { ready: 10, in_flight: 2, produced_total: 12, ..zero("orders") };
    let json = serde_json::to_value(&stats).unwrap();
    let expected = serde_json::json!({
        "queue": "orders", "ready": 10, "in_flight": 2, "delayed": 0, "dead_lettered": 0,
        "produced_total": 12, "consumed_total": 0, "acked_total": 0, "redelivered_total": 0
    });
    assert_eq!(json, expected);
}
