//! Rule (API.md, "Distributed queue": durable queues): SIGKILL of every
//! node at once, then a restart, keeps every queue as it was: its ready
//! messages (in FIFO order, with body and key), its in-flight messages
//! (still leased, and delivered again once their lease runs out), its
//! delayed messages, and its totals. Every node's own state agrees.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::client::{consume_until_some, ids_of, Consume, Stats};
use crate::common::{eventually, Cluster, ClusterOptions, CONVERGE_TIMEOUT};

const READY_Q: &str = "restart.ready";
const LEASED_Q: &str = "restart.leased";
const DELAYED_Q: &str = "restart.delayed";

/// Lease of the messages left in flight across the crash: long enough to
/// outlast a restart of the cluster, short enough to wait for.
const LEASE_MS: u64 = 8_000;

/// Lease where the test must not see a message come back.
const LONG_VISIBILITY_MS: u64 = 60_000;

/// Nack delay of the message left delayed across the crash.
const DELAY_MS: u64 = 120_000;

/// Margin below the lease within which "still in flight" is asserted.
const LEASE_MARGIN: Duration = Duration::from_millis(1_500);

const CLOCK_SLACK: Duration = Duration::from_millis(20);

#[tokio::test]
async fn queues_survive_sigkill_of_every_node() {
    let mut cluster = Cluster::start("t40_queues_restart_all", ClusterOptions::default()).await;
    let leader = cluster.wait_for_leader().await;
    let followers = cluster.followers_of(leader);
    let (a, b) = (followers[0], followers[1]);

    // READY_Q: 5 produced, 2 consumed and acked, 3 ready.
    let ready_bodies: Vec<Value> = (0..5).map(|i| json!({"ready": i})).collect();
    let ready_ids = cluster.produce_batch_ok(a, READY_Q, &ready_bodies, None).await;
    let got = cluster.consume_ok(leader, &Consume::new(READY_Q, "w").max(2).visibility_ms(LONG_VISIBILITY_MS)).await;
    assert_eq!(ids_of(&got), ready_ids[..2], "FIFO before the crash");
    cluster.ack_expect(b, READY_Q, &ready_ids[..2], 2).await;

    // LEASED_Q: 4 keyed messages, 2 of them leased and not acked.
    let leased_bodies: Vec<Value> = (0..4).map(|i| json!({"leased": i})).collect();
    let leased_ids = cluster.produce_batch_ok(leader, LEASED_Q, &leased_bodies, Some("k-1")).await;
    let leased_at = Instant::now();
    let got = cluster.consume_ok(a, &Consume::new(LEASED_Q, "w").max(2).visibility_ms(LEASE_MS)).await;
    assert_eq!(ids_of(&got), leased_ids[..2], "FIFO before the crash");

    // DELAYED_Q: one message nacked with a long delay, one ready.
    let delayed_ids = cluster.produce_batch_ok(b, DELAYED_Q, &[json!("later"), json!("now")], None).await;
    let got = cluster.consume_ok(b, &Consume::new(DELAYED_Q, "w").visibility_ms(LONG_VISIBILITY_MS)).await;
    assert_eq!(ids_of(&got), delayed_ids[..1], "FIFO before the crash");
    cluster.nack_expect(a, DELAYED_Q, &delayed_ids[..1], Some(DELAY_MS), 1).await;

    let expected = [
        (READY_Q, [("ready", 3), ("in_flight", 0), ("delayed", 0), ("produced_total", 5), ("acked_total", 2)]),
        (LEASED_Q, [("ready", 2), ("in_flight", 2), ("delayed", 0), ("produced_total", 4), ("acked_total", 0)]),
        (DELAYED_Q, [("ready", 1), ("in_flight", 0), ("delayed", 1), ("produced_total", 2), ("acked_total", 0)]),
    ];
    let mut before: BTreeMap<String, Stats> = BTreeMap::new();
    for (q, fields) in &expected {
        let stats = cluster.assert_stats(leader, q, fields, "before the crash").await;
        before.insert(q.to_string(), stats);
    }

    let nodes = cluster.running();
    for &id in &nodes {
        cluster.kill(id);
    }
    cluster.restart_all(&nodes).await;
    cluster.wait_for_leader().await;
    eprintln!("t40: every node killed and restarted; {:.1?} since the lease was granted", leased_at.elapsed());

    // The same queues, with the same content and totals, on every node.
    let api = cluster.api().clone();
    let after = eventually("t40: GET /queue/stats after the restart", CONVERGE_TIMEOUT, async || {
        api.all_queue_stats(a, None).await
    })
    .await;
    let still_leased = leased_at.elapsed() + LEASE_MARGIN < Duration::from_millis(LEASE_MS);
    for (q, stats) in &before {
        let now = after.get(q).unwrap_or_else(|| panic!("{q} is gone after the restart: {after:?}"));
        if still_leased || q != LEASED_Q {
            assert_eq!(now.counts(), stats.counts(), "{q} after the restart: {} (before: {})", now.raw, stats.raw);
        } else {
            eprintln!("t40: the restart took longer than the lease; {q}'s leased messages may be ready again");
            assert_eq!(now.ready + now.in_flight, stats.ready + stats.in_flight, "{q}: {}", now.raw);
        }
        cluster.wait_local_stats_equal(q, now, "t40 after the restart").await;
    }
    assert_eq!(after.len(), before.len(), "queues after the restart: {:?}", after.keys().collect::<Vec<_>>());

    // READY_Q: the 3 ready messages, in order, first deliveries.
    let got = cluster.consume_ok(b, &Consume::new(READY_Q, "w2").max(10).visibility_ms(LONG_VISIBILITY_MS)).await;
    assert_eq!(ids_of(&got), ready_ids[2..], "ready messages after the restart, in FIFO order");
    for (d, body) in got.iter().zip(&ready_bodies[2..]) {
        assert_eq!((&d.message, d.delivery_count, d.key.as_deref()), (body, 1, None), "{d:?}");
    }
    cluster.ack_expect(leader, READY_Q, &ready_ids[2..], 3).await;

    // LEASED_Q: first the 2 never delivered, then the 2 leased ones once
    // their lease (granted before the crash) runs out.
    let request = Consume::new(LEASED_Q, "w2").max(10).visibility_ms(LONG_VISIBILITY_MS);
    let sent = Instant::now();
    let got = cluster.consume_ok(leader, &request).await;
    let (fresh, mut returned): (Vec<_>, Vec<_>) = got.into_iter().partition(|d| d.delivery_count == 1);
    assert_eq!(ids_of(&fresh), leased_ids[2..], "never-delivered messages after the restart, in FIFO order");
    for (d, body) in fresh.iter().zip(&leased_bodies[2..]) {
        assert_eq!((&d.message, d.key.as_deref()), (body, Some("k-1")), "{d:?}");
    }
    if sent.duration_since(leased_at) + CLOCK_SLACK < Duration::from_millis(LEASE_MS) {
        assert!(returned.is_empty(), "messages leased before the crash came back within their lease: {returned:?}");
    }
    let deadline = Duration::from_millis(LEASE_MS) + CONVERGE_TIMEOUT;
    while returned.len() < 2 {
        let (more, sent) =
            consume_until_some(&cluster, b, &request, deadline, "the messages leased before the crash").await;
        let since = sent.duration_since(leased_at);
        assert!(
            since + CLOCK_SLACK >= Duration::from_millis(LEASE_MS),
            "a message leased for {LEASE_MS} ms before the crash came back by a consume sent {since:?} after the \
             lease was granted: {more:?}"
        );
        returned.extend(more);
    }
    returned.sort_by(|x, y| x.id.cmp(&y.id));
    let mut expected_back: Vec<(String, Value)> =
        leased_ids[..2].iter().cloned().zip(leased_bodies[..2].iter().cloned()).collect();
    expected_back.sort_by(|x, y| x.0.cmp(&y.0));
    let back: Vec<(String, Value)> = returned.iter().map(|d| (d.id.clone(), d.message.clone())).collect();
    assert_eq!(back, expected_back, "the leased messages come back after their lease, same ids and bodies");
    for d in &returned {
        assert_eq!((d.delivery_count, d.key.as_deref()), (2, Some("k-1")), "second delivery after the crash: {d:?}");
    }
    cluster.ack_expect(a, LEASED_Q, &leased_ids, 4).await;

    // DELAYED_Q: the delayed message stays away; the ready one comes.
    let got = cluster.consume_ok(a, &Consume::new(DELAYED_Q, "w2").max(10).visibility_ms(LONG_VISIBILITY_MS)).await;
    assert_eq!(ids_of(&got), delayed_ids[1..], "only the ready message; the nacked one is delayed {DELAY_MS} ms");
    cluster.ack_expect(a, DELAYED_Q, &delayed_ids[1..], 1).await;

    // Acking removes a message in any state, a delayed one too.
    cluster.ack_expect(b, DELAYED_Q, &delayed_ids[..1], 1).await;

    let end = [
        (READY_Q, [("ready", 0), ("in_flight", 0), ("delayed", 0), ("produced_total", 5), ("acked_total", 5)]),
        (LEASED_Q, [("ready", 0), ("in_flight", 0), ("delayed", 0), ("produced_total", 4), ("acked_total", 4)]),
        (DELAYED_Q, [("ready", 0), ("in_flight", 0), ("delayed", 0), ("produced_total", 2), ("acked_total", 2)]),
    ];
    for (q, fields) in &end {
        cluster.assert_stats(b, q, fields, "at the end").await;
    }
}
