//! Rules (API.md, "Distributed queue": leases, redelivery, dead letters,
//! nack, long polling), on one 3-node cluster with `MAX_DELIVERIES=2`:
//! - an unacked message is not delivered again while its lease runs, and
//!   comes back after it with `delivery_count` + 1, same id and body; an
//!   ack that comes after the lease ran out still removes it;
//! - after `MAX_DELIVERIES` deliveries without an ack it is never delivered
//!   from the queue again: it moves to `<queue>.dlq` with the same id, body
//!   and key, counted in `dead_lettered`;
//! - nack with delay 0 (or none) makes a message deliverable at once; nack
//!   with a delay keeps it away (`delayed` in the stats) until the delay is
//!   over; nack counts only in-flight messages; a message nacked after its
//!   last allowed delivery goes to the dead-letter queue;
//! - a long-polling consume on one node returns as soon as a produce through
//!   another node lands, long before its wait runs out, and as soon as a
//!   leased or nacked message comes back (not before).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::{consume_until_some, Consume, Delivery};
use crate::common::cluster::Nodes;
use crate::common::{eventually, Cluster, ClusterOptions};

/// `MAX_DELIVERIES` of this cluster.
const MAX_DELIVERIES: u64 = 2;

/// Lease of the messages this test lets run out.
const SHORT_VISIBILITY_MS: u64 = 1_000;

/// Lease where the test must not see a message come back.
const LONG_VISIBILITY_MS: u64 = 60_000;

/// Nack delay under test.
const NACK_DELAY_MS: u64 = 1_500;

/// Bound on a message's return after its lease or delay ended: the leader
/// notices on its own schedule, on a loaded 2-core box.
const RETURN_BOUND: Duration = Duration::from_secs(10);

/// The long poll's wait, and the bound on its answer after the produce.
const LONG_POLL_WAIT_MS: u64 = 10_000;
const LONG_POLL_PROMPT: Duration = Duration::from_secs(2);

/// How long the long poll is left waiting before the produce.
const LONG_POLL_IDLE: Duration = Duration::from_millis(500);

/// Slack for the granularity of the leader's millisecond clock.
const CLOCK_SLACK: Duration = Duration::from_millis(20);

#[tokio::test]
async fn leases_dead_letters_nacks_and_long_polls() {
    let options = ClusterOptions::default().env("MAX_DELIVERIES", MAX_DELIVERIES);
    let cluster = Cluster::start("t20_queues_redelivery", options).await;
    let n = cluster.nodes_by_role().await;

    unacked_message_returns_after_its_lease(&cluster, n).await;
    late_ack_after_the_lease_still_removes(&cluster, n).await;
    dead_letter_after_max_deliveries(&cluster, n).await;
    nack_without_delay_requeues_at_once(&cluster, n).await;
    nack_with_delay_waits_for_the_delay(&cluster, n).await;
    long_poll_wakes_on_produce_elsewhere(&cluster, n.a, n.b).await;
    long_poll_wakes_on_produce_elsewhere(&cluster, n.leader, n.a).await;
    long_poll_wakes_when_a_message_comes_back(&cluster, n).await;
}

async fn unacked_message_returns_after_its_lease(cluster: &Cluster, n: Nodes) {
    let q = "lease";
    let body = json!({"job": "lease", "payload": [1, 2, 3]});
    let id = cluster.produce_ok(n.a, q, &body, None).await;
    let request = Consume::new(q, "lease-worker").visibility_ms(SHORT_VISIBILITY_MS);
    let leased_at = Instant::now();
    let first = one(cluster.consume_ok(n.leader, &request).await, "first consume of lease");
    assert_eq!((&first.id, &first.message, first.delivery_count), (&id, &body, 1), "first delivery: {first:?}");
    let none = cluster.consume_ok(n.b, &request).await;
    assert!(none.is_empty(), "the message is leased for {SHORT_VISIBILITY_MS} ms, yet a consume returned {none:?}");
    cluster.assert_stats(n.b, q, &[("ready", 0), ("in_flight", 1)], "during the lease").await;

    let (got, sent) =
        consume_until_some(cluster, n.b, &request, RETURN_BOUND, "the unacked message to come back").await;
    let again = one(got, "redelivery of lease");
    let after = sent.duration_since(leased_at);
    assert_eq!((&again.id, &again.message, again.delivery_count), (&id, &body, 2), "redelivery: {again:?}");
    assert!(
        after + CLOCK_SLACK >= Duration::from_millis(SHORT_VISIBILITY_MS),
        "redelivered by a consume sent {after:?} after the lease of {SHORT_VISIBILITY_MS} ms began"
    );
    cluster.ack_expect(n.a, q, std::slice::from_ref(&id), 1).await;
    let stats = cluster
        .assert_stats(
            n.leader,
            q,
            &[
                ("ready", 0),
                ("in_flight", 0),
                ("produced_total", 1),
                ("consumed_total", 2),
                ("redelivered_total", 1),
                ("acked_total", 1),
                ("dead_lettered", 0),
            ],
            "after the redelivery was acked",
        )
        .await;
    cluster.wait_queue_metrics_match(&stats, "t20 lease").await;
}

/// A consumer that acks after its lease ran out (the message is ready
/// again) still removes the message: ack works in any state.
async fn late_ack_after_the_lease_still_removes(cluster: &Cluster, n: Nodes) {
    let q = "late-ack";
    let id = cluster.produce_ok(n.leader, q, &json!({"late": true}), None).await;
    let request = Consume::new(q, "slow-worker").visibility_ms(SHORT_VISIBILITY_MS);
    one(cluster.consume_ok(n.a, &request).await, "first consume of late-ack");
    eventually("the lease of late-ack to run out (ready again)", RETURN_BOUND, async || {
        let stats = cluster.queue_stats(n.b, q).await?;
        if (stats.ready, stats.in_flight) == (1, 0) {
            Ok(())
        } else {
            Err(stats.raw.to_string())
        }
    })
    .await;
    cluster.ack_expect(n.b, q, std::slice::from_ref(&id), 1).await;
    let none = cluster.consume_ok(n.a, &request).await;
    assert!(none.is_empty(), "a message acked after its lease ran out was delivered again: {none:?}");
    cluster.assert_stats(n.leader, q, &[("ready", 0), ("in_flight", 0), ("acked_total", 1)], "late ack").await;
}

async fn dead_letter_after_max_deliveries(cluster: &Cluster, n: Nodes) {
    let q = "poison";
    let dlq = format!("{q}.dlq");
    let body = json!({"job": "poison", "attempts_allowed": MAX_DELIVERIES});
    let id = cluster.produce_ok(n.b, q, &body, Some("poison-key")).await;
    let request = Consume::new(q, "poison-worker").visibility_ms(SHORT_VISIBILITY_MS);
    let first = one(cluster.consume_ok(n.a, &request).await, "first delivery of poison");
    assert_eq!((&first.id, first.delivery_count, first.key.as_deref()), (&id, 1, Some("poison-key")), "{first:?}");
    let mut last = first;
    for count in 2..=MAX_DELIVERIES {
        let what = format!("delivery {count} of the unacked poison message");
        let (got, _) = consume_until_some(cluster, n.leader, &request, RETURN_BOUND, &what).await;
        let again = one(got, &what);
        assert_eq!((&again.id, &again.message, again.delivery_count), (&id, &body, count), "{what}: {again:?}");
        last = again;
    }
    // The last lease runs out: the message must reach the dead-letter queue
    // and never be delivered from the queue again. Consuming the queue
    // meanwhile is what a real worker does, and catches a delivery too many.
    let started = Instant::now();
    let dead = eventually(format!("{id} to reach {dlq}"), RETURN_BOUND, async || {
        let extra = cluster.consume(n.b, &request).await?;
        assert!(
            extra.is_empty(),
            "MAX_DELIVERIES is {MAX_DELIVERIES} and message {id} was delivered {MAX_DELIVERIES} times \
             (last {last:?}), yet {q} delivered again: {extra:?}"
        );
        match cluster.queue_stats(n.a, &dlq).await {
            Ok(stats) if stats.ready == 1 => Ok(stats),
            Ok(stats) => Err(format!("{dlq} stats: {}", stats.raw)),
            Err(e) => Err(e),
        }
    })
    .await;
    eprintln!("t20: {id} reached {dlq} {:.3?} after the last delivery: {}", started.elapsed(), dead.raw);
    let source = cluster
        .assert_stats(
            n.leader,
            q,
            &[
                ("ready", 0),
                ("in_flight", 0),
                ("delayed", 0),
                ("dead_lettered", 1),
                ("produced_total", 1),
                ("consumed_total", MAX_DELIVERIES),
                ("redelivered_total", MAX_DELIVERIES - 1),
                ("acked_total", 0),
            ],
            "the source queue after dead-lettering",
        )
        .await;
    let from_dlq = one(
        cluster.consume_ok(n.b, &Consume::new(&dlq, "dlq-inspector").visibility_ms(LONG_VISIBILITY_MS)).await,
        "consume of the dead-letter queue",
    );
    assert_eq!(
        (&from_dlq.id, &from_dlq.message, from_dlq.key.as_deref()),
        (&id, &body, Some("poison-key")),
        "the dead-letter queue holds the message with its id, body and key: {from_dlq:?}"
    );
    cluster.ack_expect(n.a, &dlq, std::slice::from_ref(&id), 1).await;
    cluster.assert_stats(n.b, &dlq, &[("ready", 0), ("in_flight", 0), ("acked_total", 1)], "dlq after the ack").await;
    let none = cluster.consume_ok(n.a, &request).await;
    assert!(none.is_empty(), "{q} is empty after dead-lettering: {none:?}");
    cluster.wait_queue_metrics_match(&source, "t20 dead letter").await;
}

async fn nack_without_delay_requeues_at_once(cluster: &Cluster, n: Nodes) {
    let q = "nack-now";
    let bodies = [json!({"nack": 1}), json!({"nack": 2})];
    let ids = cluster.produce_batch_ok(n.leader, q, &bodies, None).await;
    let request = Consume::new(q, "nacker").visibility_ms(LONG_VISIBILITY_MS);
    let first = one(cluster.consume_ok(n.a, &request).await, "first consume of nack-now");
    assert_eq!(first.id, ids[0], "FIFO: {first:?}");
    // Only in-flight messages count: the ready second one is not requeued.
    cluster.nack_expect(n.b, q, &ids, Some(0), 1).await;
    cluster.assert_stats(n.a, q, &[("ready", 2), ("in_flight", 0), ("delayed", 0)], "after nack delay 0").await;

    // At once: the very next consume sees both, the nacked one as its second delivery.
    let got = cluster.consume_ok(n.leader, &request.clone().max(10)).await;
    let mut seen: Vec<(String, u64)> = got.iter().map(|d| (d.id.clone(), d.delivery_count)).collect();
    seen.sort();
    let mut expected = vec![(ids[0].clone(), 2), (ids[1].clone(), 1)];
    expected.sort();
    assert_eq!(seen, expected, "a message nacked with delay 0 is deliverable at once: {got:?}");
    // A nack without delay_ms defaults to 0.
    cluster.nack_expect(n.a, q, &ids[1..], None, 1).await;
    let again = one(cluster.consume_ok(n.b, &request).await, "consume after a nack without delay_ms");
    assert_eq!((&again.id, again.delivery_count), (&ids[1], 2), "{again:?}");
    cluster.ack_expect(n.a, q, &ids[1..], 1).await;
    // Acked messages are not in flight: nothing to requeue.
    cluster.nack_expect(n.leader, q, &ids[1..], Some(0), 0).await;

    // The first one has had its MAX_DELIVERIES deliveries: given back by a
    // nack, it goes to the dead-letter queue, not back to the queue.
    cluster.nack_expect(n.b, q, &ids[..1], Some(0), 1).await;
    let none = cluster.consume_ok(n.a, &request).await;
    assert!(none.is_empty(), "a message nacked after {MAX_DELIVERIES} deliveries was delivered again: {none:?}");
    let dlq = format!("{q}.dlq");
    let dead = one(
        cluster.consume_ok(n.leader, &Consume::new(&dlq, "dlq-inspector").visibility_ms(LONG_VISIBILITY_MS)).await,
        "consume of nack-now.dlq",
    );
    assert_eq!((&dead.id, &dead.message), (&ids[0], &bodies[0]), "the dead-lettered message: {dead:?}");
    cluster.ack_expect(n.a, &dlq, &ids[..1], 1).await;
    cluster
        .assert_stats(
            n.b,
            q,
            // (Whether a nack counts in redelivered_total is the server's choice.)
            &[("ready", 0), ("in_flight", 0), ("acked_total", 1), ("dead_lettered", 1), ("consumed_total", 4)],
            "nack-now at the end",
        )
        .await;
}

async fn nack_with_delay_waits_for_the_delay(cluster: &Cluster, n: Nodes) {
    let q = "nack-later";
    let body = json!({"nack": "later"});
    let id = cluster.produce_ok(n.a, q, &body, None).await;
    let request = Consume::new(q, "delayer").visibility_ms(LONG_VISIBILITY_MS);
    one(cluster.consume_ok(n.b, &request).await, "first consume of nack-later");
    let nacked_at = Instant::now();
    cluster.nack_expect(n.leader, q, std::slice::from_ref(&id), Some(NACK_DELAY_MS), 1).await;
    let during = cluster.queue_stats(n.a, q).await.unwrap_or_else(|e| panic!("{e}"));
    if nacked_at.elapsed() < Duration::from_millis(NACK_DELAY_MS) {
        let expected = [("ready", 0), ("in_flight", 0), ("delayed", 1)];
        crate::client::stats_match(&during, &expected).unwrap_or_else(|e| panic!("during the nack delay: {e}"));
    }
    let (got, sent) =
        consume_until_some(cluster, n.a, &request, RETURN_BOUND, "the nacked message after its delay").await;
    let again = one(got, "redelivery after the nack delay");
    let after = sent.duration_since(nacked_at);
    assert_eq!((&again.id, &again.message, again.delivery_count), (&id, &body, 2), "{again:?}");
    assert!(
        after + CLOCK_SLACK >= Duration::from_millis(NACK_DELAY_MS),
        "nacked with delay_ms {NACK_DELAY_MS}, yet delivered by a consume sent {after:?} after the nack was sent"
    );
    cluster.ack_expect(n.b, q, std::slice::from_ref(&id), 1).await;
    cluster
        .assert_stats(n.leader, q, &[("ready", 0), ("in_flight", 0), ("delayed", 0), ("acked_total", 1)], "nack-later")
        .await;
}

/// A consume waiting on node `waiter` returns promptly once a message is
/// produced through node `producer`.
async fn long_poll_wakes_on_produce_elsewhere(cluster: &Cluster, waiter: u64, producer: u64) {
    let q = format!("long-poll-{waiter}");
    let request = Consume::new(&q, "poller").max(5).wait_ms(LONG_POLL_WAIT_MS);
    let api = cluster.api().clone();
    let poll = {
        let request = request.clone();
        tokio::spawn(async move {
            let reply = api.consume(waiter, &request).await;
            (reply, Instant::now())
        })
    };
    tokio::time::sleep(LONG_POLL_IDLE).await;
    assert!(
        !poll.is_finished(),
        "a consume with wait_ms {LONG_POLL_WAIT_MS} on an empty queue answered within {LONG_POLL_IDLE:?}"
    );
    let body = json!({"wake": waiter});
    let produced_at = Instant::now();
    let id = cluster.produce_ok(producer, &q, &body, None).await;
    let (reply, answered_at) = tokio::time::timeout(LONG_POLL_PROMPT * 3, poll)
        .await
        .unwrap_or_else(|_| {
            panic!("the long poll on node{waiter} did not answer within {:?} of the produce", LONG_POLL_PROMPT * 3)
        })
        .expect("the long-poll task panicked");
    let got = reply.unwrap_or_else(|e| panic!("{e}"));
    let took = answered_at.duration_since(produced_at);
    eprintln!("t20: long poll on node{waiter} answered {took:.3?} after the produce was sent via node{producer}");
    assert_eq!(got.len(), 1, "the long poll returns the produced message: {got:?}");
    assert_eq!((&got[0].id, &got[0].message, got[0].delivery_count), (&id, &body, 1), "{got:?}");
    assert!(
        took < LONG_POLL_PROMPT,
        "a consume waiting on node{waiter} (wait_ms {LONG_POLL_WAIT_MS}) answered {took:?} after a produce via \
         node{producer}: it must return as soon as a message is available"
    );
    cluster.ack_expect(producer, &q, &[id], 1).await;
}

/// A consume waiting on one node returns promptly when a leased message's
/// lease runs out, and when a nack delay is over: a message that comes back
/// is available like a new one. Never before, though.
async fn long_poll_wakes_when_a_message_comes_back(cluster: &Cluster, n: Nodes) {
    let q = "long-poll-return";
    let waiting = Consume::new(q, "poller").visibility_ms(LONG_VISIBILITY_MS).wait_ms(LONG_POLL_WAIT_MS);
    // (what, long poll via, first lease, nack delay): the message comes back
    // after the lease, or after the nack delay.
    let steps = [
        ("its lease ran out", n.b, SHORT_VISIBILITY_MS, None),
        ("its nack delay was over", n.leader, LONG_VISIBILITY_MS, Some(NACK_DELAY_MS)),
    ];
    for (what, via, lease_ms, nack_delay_ms) in steps {
        let body = json!({"comes back when": what});
        let id = cluster.produce_ok(n.leader, q, &body, None).await;
        one(cluster.consume_ok(n.a, &Consume::new(q, "w").visibility_ms(lease_ms)).await, "first consume");
        let left = Instant::now();
        let after_ms = nack_delay_ms.unwrap_or(lease_ms);
        if let Some(delay_ms) = nack_delay_ms {
            cluster.nack_expect(n.a, q, std::slice::from_ref(&id), Some(delay_ms), 1).await;
        }
        let got = one(cluster.consume_ok(via, &waiting).await, &format!("long poll on node{via} until {what}"));
        let took = left.elapsed();
        eprintln!("t20: long poll on node{via} answered {took:.3?} after the message left ({what} at {after_ms} ms)");
        assert_eq!((&got.id, &got.message, got.delivery_count), (&id, &body, 2), "{what}: {got:?}");
        let due = Duration::from_millis(after_ms);
        assert!(took + CLOCK_SLACK >= due, "a long poll got the message {took:?} after it left, before {what}");
        assert!(
            took < due + LONG_POLL_PROMPT,
            "a long poll on node{via} (wait_ms {LONG_POLL_WAIT_MS}) answered {took:?} after the message left; \
             {what} at {due:?}: it must return as soon as the message is available"
        );
        cluster.ack_expect(n.b, q, &[id], 1).await;
    }
}

/// The single delivery of `got`.
fn one(mut got: Vec<Delivery>, what: &str) -> Delivery {
    assert_eq!(got.len(), 1, "{what}: expected one message, got {got:?}");
    got.remove(0)
}
