//! Rules (API.md, "Distributed queue"), one step each, on one 3-node
//! cluster, with requests spread over the leader and both followers:
//! - a produce answers one id per message (single and batch), ids are
//!   unique, also for equal bodies, and a consumer sees the same ids;
//! - messages of any JSON type come back unchanged;
//! - first deliveries are FIFO per queue, across produces and consumes sent
//!   through different nodes, with `delivery_count` 1;
//! - `max` bounds a consume (default 1); a consume with nothing ready
//!   answers an empty list; the default lease keeps a message in flight;
//! - keyed messages keep their order and come back with their key;
//! - ack counts only real acks (unknown and already-acked ids count 0),
//!   and removes a message in any state (a ready one too); ids belong to
//!   their queue (acking or nacking them on another queue does nothing);
//! - stats move as messages are produced, consumed and acked, every node's
//!   local view converges to them, and placement names three distinct
//!   members with the primary first, the same on every node;
//! - an unknown queue: empty consume (after its wait), stats 404;
//! - `GET /queue/stats` lists the queues (both consistencies);
//! - the queue metrics agree with the stats; the latency histograms count
//!   requests; the Prometheus text has the families.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::client::{ids_of, Consume, Delivery, Stats};
use crate::common::cluster::Nodes;
use crate::common::{assert_contract_error, eventually, Cluster, ClusterOptions};

/// Lease used where the test must not see a message come back.
const LONG_VISIBILITY_MS: u64 = 60_000;

/// A wait on an empty queue, to see that the server honours it.
const EMPTY_WAIT_MS: u64 = 400;

/// Slack for clock granularity when comparing this machine's timings with a
/// server-side wait.
const CLOCK_SLACK: Duration = Duration::from_millis(20);

#[tokio::test]
async fn queue_basics_over_a_three_node_cluster() {
    let cluster = Cluster::start("t10_queues_basics", ClusterOptions::default()).await;
    let n = cluster.nodes_by_role().await;

    let orders = produce_consume_ack_in_fifo_order(&cluster, n).await;
    let keyed = keyed_messages_keep_their_order_and_key(&cluster, n).await;
    let defaults = consume_defaults(&cluster, n).await;
    unknown_queue(&cluster, n).await;
    stats_listing_and_placement(&cluster, n, &[orders, keyed, defaults]).await;
    metrics_move(&cluster, n).await;
}

/// Produce single and batch through different nodes, consume in several
/// steps through different nodes, ack; stats at every step.
async fn produce_consume_ack_in_fifo_order(cluster: &Cluster, n: Nodes) -> String {
    let q = "orders";
    let mut bodies: Vec<Value> = Vec::new();
    let mut ids: Vec<String> = Vec::new();

    let body = json!({"n": 0});
    ids.push(cluster.produce_ok(n.a, q, &body, None).await);
    bodies.push(body);
    let batch: Vec<Value> = (1..=5).map(|i| json!({"n": i})).collect();
    ids.extend(cluster.produce_batch_ok(n.leader, q, &batch, None).await);
    bodies.extend(batch);
    // The same body again: a new message with its own id.
    let body = json!({"n": 0});
    ids.push(cluster.produce_ok(n.b, q, &body, None).await);
    bodies.push(body);
    // Any JSON value is a message, and comes back unchanged.
    let batch = vec![
        json!("text with \"quotes\" and ünïcödé"),
        json!(7),
        json!(-2.5),
        Value::Null,
        json!([1, [2, 3], {"k": "v"}]),
        json!({"nested": {"deep": true, "list": []}}),
        json!(false),
    ];
    ids.extend(cluster.produce_batch_ok(n.a, q, &batch, None).await);
    bodies.extend(batch);
    let total = ids.len() as u64;
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "every produced message gets its own id: {ids:?}");

    cluster
        .assert_stats(
            n.b,
            q,
            &[
                ("ready", total),
                ("in_flight", 0),
                ("delayed", 0),
                ("dead_lettered", 0),
                ("produced_total", total),
                ("consumed_total", 0),
                ("acked_total", 0),
                ("redelivered_total", 0),
            ],
            "after 4 produces (2 single, 2 batches)",
        )
        .await;

    // Three consumes through three nodes, one asking for more than is left.
    let mut got: Vec<Delivery> = Vec::new();
    for (id, max) in [(n.b, 4), (n.a, 3), (n.leader, 100)] {
        let request = Consume::new(q, &format!("worker-{id}")).max(max).visibility_ms(LONG_VISIBILITY_MS);
        let deliveries = cluster.consume_ok(id, &request).await;
        let expected = (ids.len() - got.len()).min(max as usize);
        assert_eq!(deliveries.len(), expected, "node{id} {request}: {deliveries:?}");
        got.extend(deliveries);
    }
    assert_first_deliveries(&got, &ids, &bodies, None, "orders consumed through b, a, leader");
    let none = cluster.consume_ok(n.a, &Consume::new(q, "worker-late").max(10)).await;
    assert!(none.is_empty(), "every message is in flight; a consume returns nothing, got {none:?}");
    cluster
        .assert_stats(
            n.leader,
            q,
            &[("ready", 0), ("in_flight", total), ("consumed_total", total), ("acked_total", 0)],
            "after consuming everything",
        )
        .await;

    // Ack counts real acks: an unknown (well-formed) id and a repeat count 0.
    let mut first = ids[..3].to_vec();
    first.push("ffffffffffffffffffffffff".into());
    cluster.ack_expect(n.a, q, &first, 3).await;
    cluster.ack_expect(n.leader, q, &first, 0).await;
    cluster
        .assert_stats(
            n.b,
            q,
            &[("ready", 0), ("in_flight", total - 3), ("acked_total", 3)],
            "after acking 3 (and acking them again)",
        )
        .await;
    cluster.ack_expect(n.b, q, &ids[3..], total - 3).await;
    let stats = cluster
        .assert_stats(
            n.a,
            q,
            &[
                ("ready", 0),
                ("in_flight", 0),
                ("delayed", 0),
                ("dead_lettered", 0),
                ("produced_total", total),
                ("consumed_total", total),
                ("acked_total", total),
                ("redelivered_total", 0),
            ],
            "after acking every message",
        )
        .await;
    cluster.wait_local_stats_equal(q, &stats, "t10 orders").await;
    let none = cluster.consume_ok(n.b, &Consume::new(q, "worker-late").max(10)).await;
    assert!(none.is_empty(), "acked messages are gone; a consume returned {none:?}");
    q.to_owned()
}

/// Keyed and unkeyed messages interleaved: consumed one at a time through
/// rotating nodes, they come in produce order with their keys.
async fn keyed_messages_keep_their_order_and_key(cluster: &Cluster, n: Nodes) -> String {
    let q = "keyed";
    let plan: [(u64, &[&str], Option<&str>); 5] = [
        (n.a, &["alpha-1", "alpha-2"], Some("alpha")),
        (n.leader, &["beta-1"], Some("beta")),
        (n.b, &["plain-1"], None),
        (n.b, &["alpha-3"], Some("alpha")),
        (n.a, &["beta-2", "beta-3"], Some("beta")),
    ];
    let mut expected: Vec<(String, Value, Option<&str>)> = Vec::new();
    for (id, names, key) in plan {
        let messages: Vec<Value> = names.iter().map(|name| json!({"name": name})).collect();
        let ids = if messages.len() == 1 {
            vec![cluster.produce_ok(id, q, &messages[0], key).await]
        } else {
            cluster.produce_batch_ok(id, q, &messages, key).await
        };
        expected.extend(ids.into_iter().zip(messages).map(|(id, message)| (id, message, key)));
    }
    let nodes = [n.b, n.leader, n.a];
    for (i, (id, message, key)) in expected.iter().enumerate() {
        let via = nodes[i % nodes.len()];
        let request = Consume::new(q, "keyed-worker").max(1).visibility_ms(LONG_VISIBILITY_MS);
        let got = cluster.consume_ok(via, &request).await;
        let context = format!("consume #{i} of {q} via node{via}");
        assert_eq!(got.len(), 1, "{context}: {got:?}");
        let delivery = &got[0];
        assert_eq!(
            (&delivery.id, &delivery.message, delivery.key.as_deref(), delivery.delivery_count),
            (id, message, *key, 1),
            "{context}: first deliveries come in produce order with their key (keyed and unkeyed interleaved)"
        );
        cluster.ack_expect(via, q, std::slice::from_ref(&delivery.id), 1).await;
    }
    let count = expected.len() as u64;
    cluster
        .assert_stats(
            n.leader,
            q,
            &[("ready", 0), ("in_flight", 0), ("produced_total", count), ("acked_total", count)],
            "keyed messages all acked",
        )
        .await;
    q.to_owned()
}

/// A consume with only `queue` and `consumer`: one message (default max 1),
/// leased (default 30 s lease: the next consume gets the next message).
async fn consume_defaults(cluster: &Cluster, n: Nodes) -> String {
    let q = "defaults";
    let bodies: Vec<Value> = (0..3).map(|i| json!({"default": i})).collect();
    let ids = cluster.produce_batch_ok(n.leader, q, &bodies, None).await;
    let mut got = Vec::new();
    for via in [n.a, n.b] {
        let reply = cluster
            .post(via, "/queue/consume", &json!({"queue": q, "consumer": "minimal"}))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let deliveries =
            crate::client::parse_consumed(&reply, &Consume::new(q, "minimal")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(deliveries.len(), 1, "a consume without max returns one message (default max 1): {reply}");
        got.extend(deliveries);
    }
    assert_first_deliveries(&got, &ids[..2], &bodies[..2], None, "two default consumes");
    cluster.assert_stats(n.b, q, &[("ready", 1), ("in_flight", 2)], "two messages leased with the default lease").await;
    // Ids belong to their queue: acking or nacking them on another queue
    // (one that exists) finds nothing and leaves them alone.
    cluster.ack_expect(n.a, "keyed", &ids, 0).await;
    cluster.nack_expect(n.leader, "keyed", &ids, Some(0), 0).await;
    cluster
        .assert_stats(n.b, q, &[("ready", 1), ("in_flight", 2), ("acked_total", 0)], "after ack/nack on another queue")
        .await;
    cluster.ack_expect(n.leader, q, &ids[..2], 2).await;
    cluster
        .assert_stats(n.a, q, &[("ready", 1), ("in_flight", 0), ("acked_total", 2)], "the 2 leased ones acked")
        .await;
    // Acking removes a message whatever its state, a ready one too.
    cluster.ack_expect(n.b, q, &ids[2..], 1).await;
    cluster.assert_stats(n.leader, q, &[("ready", 0), ("acked_total", 3)], "the ready one acked").await;
    let none = cluster.consume_ok(n.a, &Consume::new(q, "minimal")).await;
    assert!(none.is_empty(), "an acked ready message is gone: {none:?}");
    q.to_owned()
}

/// Consume on a queue nobody produced to: an empty list, after the wait;
/// its stats are 404.
async fn unknown_queue(cluster: &Cluster, n: Nodes) {
    let q = "never-produced";
    let got = cluster.consume_ok(n.a, &Consume::new(q, "nobody").max(5)).await;
    assert!(got.is_empty(), "consume of an unknown queue: {got:?}");
    let started = Instant::now();
    let got = cluster.consume_ok(n.leader, &Consume::new(q, "nobody").max(5).wait_ms(EMPTY_WAIT_MS)).await;
    let waited = started.elapsed();
    assert!(got.is_empty(), "consume of an unknown queue with a wait: {got:?}");
    assert!(
        waited + CLOCK_SLACK >= Duration::from_millis(EMPTY_WAIT_MS),
        "a consume with wait_ms {EMPTY_WAIT_MS} on an empty queue answered after {waited:?}: it must wait"
    );
    for id in [n.b, n.leader] {
        let reply = cluster.get(id, &format!("/queue/stats?queue={q}")).await.unwrap_or_else(|e| panic!("{e}"));
        assert_contract_error(&reply, 404, "not_found", &format!("GET /queue/stats of an unknown queue via node{id}"));
    }
}

/// `GET /queue/stats` lists the queues with the same stats as the per-queue
/// route, on every node and with both consistencies; placement is a
/// property of the queue, the same on every node.
async fn stats_listing_and_placement(cluster: &Cluster, n: Nodes, queues: &[String]) {
    for q in queues {
        let mut placements = BTreeSet::new();
        let mut reference: Option<Stats> = None;
        for id in [n.leader, n.a, n.b] {
            let stats = cluster.queue_stats(id, q).await.unwrap_or_else(|e| panic!("{e}"));
            placements.insert((stats.primary.clone(), stats.replicas.clone()));
            if let Some(reference) = &reference {
                assert_eq!(stats.counts(), reference.counts(), "linearizable stats of {q} differ between nodes");
            }
            reference.get_or_insert(stats);
        }
        assert_eq!(placements.len(), 1, "the nodes report different placements for {q}: {placements:?}");
        let reference = reference.expect("three reads");
        let listed = cluster.all_queue_stats(n.a, None).await.unwrap_or_else(|e| panic!("{e}"));
        let entry = listed.get(q).unwrap_or_else(|| panic!("GET /queue/stats via node{} omits {q}", n.a));
        assert_eq!(entry.counts(), reference.counts(), "GET /queue/stats's entry for {q} vs ?queue={q}");
        assert_eq!(
            (&entry.primary, &entry.replicas),
            (&reference.primary, &reference.replicas),
            "placement of {q} in the list vs ?queue={q}"
        );
        let what = format!("node{}'s GET /queue/stats?consistency=local to list {q} as {}", n.b, reference.raw);
        eventually(what, crate::client::VISIBLE_TIMEOUT, async || {
            let listed = cluster.all_queue_stats(n.b, Some("local")).await?;
            match listed.get(q) {
                Some(entry) if entry.counts() == reference.counts() => Ok(()),
                other => Err(format!("{q}: {:?}", other.map(|s| &s.raw))),
            }
        })
        .await;
        cluster.wait_local_stats_equal(q, &reference, "t10 listing").await;
    }
    let listed = cluster.all_queue_stats(n.leader, Some("linearizable")).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(!listed.contains_key("never-produced"), "a queue nobody produced to is listed: {listed:?}");
}

/// Per-queue metrics agree with the stats; each produce and consume request
/// is timed; the Prometheus text has the queue families.
async fn metrics_move(cluster: &Cluster, n: Nodes) {
    let q = "metered";
    let all = cluster.running();
    let produce_hist = "dsync_queue_produce_duration_seconds";
    let consume_hist = "dsync_queue_consume_duration_seconds";
    let sum = async |name: &str| cluster.metric_sum(&all, name).await.unwrap_or_else(|e| panic!("{e}"));
    let (produces_before, consumes_before) = (sum(produce_hist).await, sum(consume_hist).await);

    let mut ids = Vec::new();
    for (i, id) in [n.leader, n.a, n.b].into_iter().enumerate() {
        ids.push(cluster.produce_ok(id, q, &json!({"metered": i}), None).await);
    }
    let mut consumed = Vec::new();
    for id in [n.b, n.a] {
        consumed
            .extend(ids_of(&cluster.consume_ok(id, &Consume::new(q, "meter").visibility_ms(LONG_VISIBILITY_MS)).await));
    }
    cluster.ack_expect(n.leader, q, &consumed[..1], 1).await;
    // produced 3, consumed 2, acked 1: ready 1, in flight 1.
    let stats = cluster
        .assert_stats(
            n.a,
            q,
            &[("ready", 1), ("in_flight", 1), ("produced_total", 3), ("consumed_total", 2), ("acked_total", 1)],
            "metered queue",
        )
        .await;
    cluster.wait_queue_metrics_match(&stats, "t10 metrics").await;

    let (produces, consumes) = (sum(produce_hist).await - produces_before, sum(consume_hist).await - consumes_before);
    assert!(produces >= 3.0, "{produce_hist}: {produces} observations for 3 produce requests (summed over nodes)");
    assert!(consumes >= 2.0, "{consume_hist}: {consumes} observations for 2 consume requests (summed over nodes)");

    for id in [n.a, n.leader] {
        let text = cluster.prometheus_text(id).await.unwrap_or_else(|e| panic!("{e}"));
        for needle in [
            format!("dsync_queue_produced_total{{queue=\"{q}\"}}"),
            format!("dsync_queue_acked_total{{queue=\"{q}\"}}"),
            format!("dsync_queue_ready{{queue=\"{q}\"}}"),
            format!("dsync_queue_in_flight{{queue=\"{q}\"}}"),
            format!("# TYPE {produce_hist} histogram"),
            format!("# TYPE {consume_hist} histogram"),
        ] {
            assert!(text.contains(&needle), "node{id} GET /metrics?format=prometheus lacks {needle:?}");
        }
    }
}

/// Asserts that `got` are first deliveries of `ids` with `bodies`, in that
/// order, with `key`.
fn assert_first_deliveries(got: &[Delivery], ids: &[String], bodies: &[Value], key: Option<&str>, context: &str) {
    let got_ids = ids_of(got);
    assert_eq!(got_ids, ids, "{context}: first deliveries must come in produce order (FIFO)");
    for (delivery, body) in got.iter().zip(bodies) {
        assert_eq!(&delivery.message, body, "{context}: message {} comes back unchanged", delivery.id);
        assert_eq!(delivery.delivery_count, 1, "{context}: first delivery of {}: {delivery:?}", delivery.id);
        assert_eq!(delivery.key.as_deref(), key, "{context}: key of {}", delivery.id);
    }
}
