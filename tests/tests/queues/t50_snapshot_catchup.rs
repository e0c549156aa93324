//! Rule (API.md, "Distributed queue", and snapshots): a node that was down
//! while thousands of queue operations were committed and the leader
//! compacted its log (`SNAPSHOT_ENTRIES` small) catches up by receiving a
//! snapshot that carries the queues: its own (`consistency=local`) stats of
//! every queue equal the leader's, and consuming and acking through it
//! continues exactly where the cluster is (FIFO, same ids and bodies).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::client::{Consume, Stats};
use crate::common::{eventually, Cluster, ClusterOptions, CONVERGE_TIMEOUT};

/// `SNAPSHOT_ENTRIES` for this test: snapshots (and purges) come quickly.
const SNAPSHOT_ENTRIES: u64 = 50;

const MAIN_Q: &str = "snap.main";
const SIDE_Q: &str = "snap.side";
const FILLER_Q: &str = "snap.filler";

/// Messages produced to each queue while the node is down, and batch size
/// (one Raft entry per batch: 125 entries, a few snapshots' worth).
const MAIN_MESSAGES: usize = 2_000;
const SIDE_MESSAGES: usize = 500;
const BATCH: usize = 20;

/// Of MAIN_Q: consumed while the node is down, and of those acked.
const MAIN_CONSUMED: usize = 600;
const MAIN_ACKED: usize = 500;

/// Of SIDE_Q: consumed, of those nacked with a long delay, the rest acked.
const SIDE_CONSUMED: usize = 50;
const SIDE_NACKED: usize = 10;

const LONG_VISIBILITY_MS: u64 = 120_000;
const LONG_DELAY_MS: u64 = 120_000;

/// How long to wait for the leader's purge before writing more.
const PURGE_WAIT: Duration = Duration::from_millis(500);
/// Extra filler rounds (3 entries each) allowed if the leader has not
/// purged far enough.
const FILLER_ROUNDS_MAX: u64 = 60;

/// Messages consumed through the caught-up node at the end.
const AFTER_CATCHUP: usize = 10;

#[tokio::test]
async fn node_behind_purged_log_catches_up_with_queue_state() {
    let options = ClusterOptions::default().snapshot_entries(SNAPSHOT_ENTRIES);
    let mut cluster = Cluster::start("t50_queues_snapshot", options).await;
    let leader = cluster.wait_for_leader().await;
    let lagging = cluster.followers_of(leader)[0];
    let lagging_last = cluster.raft_metrics(lagging).await.expect("lagging node's /metrics")["last_log_index"]
        .as_u64()
        .unwrap_or_else(|| panic!("node{lagging} metrics.raft.last_log_index"));
    cluster.kill(lagging);
    let live = cluster.running();
    let started = Instant::now();

    let main = produce_numbered(&cluster, &live, MAIN_Q, MAIN_MESSAGES).await;
    let side = produce_numbered(&cluster, &live, SIDE_Q, SIDE_MESSAGES).await;
    eprintln!("t50: {} messages produced in {:.1?}", MAIN_MESSAGES + SIDE_MESSAGES, started.elapsed());
    let consumed = consume_in_order(&cluster, &live, MAIN_Q, &main, 0, MAIN_CONSUMED).await;
    for (i, chunk) in consumed[..MAIN_ACKED].chunks(100).enumerate() {
        cluster.ack_expect(live[i % live.len()], MAIN_Q, chunk, chunk.len() as u64).await;
    }
    let consumed_side = consume_in_order(&cluster, &live, SIDE_Q, &side, 0, SIDE_CONSUMED).await;
    cluster.nack_expect(live[0], SIDE_Q, &consumed_side[..SIDE_NACKED], Some(LONG_DELAY_MS), SIDE_NACKED as u64).await;
    let rest = &consumed_side[SIDE_NACKED..];
    cluster.ack_expect(live[1], SIDE_Q, rest, rest.len() as u64).await;

    // Only if the leader no longer has the entry after lagging_last is a
    // snapshot the sole way to catch up.
    let leader = cluster.wait_for_leader_among(&live, None).await;
    let mut rounds = 0;
    loop {
        let purged = cluster.purged_past(leader, lagging_last, PURGE_WAIT).await;
        match purged {
            Ok(metrics) => {
                eprintln!("t50: node{lagging} down at index {lagging_last}; leader node{leader}: {metrics}");
                break;
            }
            Err(last) => assert!(
                rounds < FILLER_ROUNDS_MAX,
                "leader node{leader} has not purged its log past index {lagging_last} with \
                 SNAPSHOT_ENTRIES={SNAPSHOT_ENTRIES} after the workload and {rounds} filler rounds ({last})"
            ),
        }
        // A round of filler traffic on a queue of its own.
        let ids = cluster.produce_batch_ok(live[0], FILLER_Q, &[json!({"filler": rounds})], None).await;
        cluster.consume_ok(live[1], &Consume::new(FILLER_Q, "filler")).await;
        cluster.ack_expect(live[0], FILLER_Q, &ids, 1).await;
        rounds += 1;
    }
    eprintln!("t50: workload done in {:.1?}", started.elapsed());
    let reference = cluster.all_queue_stats(leader, None).await.unwrap_or_else(|e| panic!("{e}"));
    let target = cluster.applied_index(leader).await.unwrap_or_else(|e| panic!("{e}"));

    cluster.restart(lagging).await;
    cluster.wait_applied(lagging, target).await;
    eprintln!("t50: node{lagging} applied {target} at {:.1?}", started.elapsed());
    let what = format!("node{lagging}'s local stats of every queue to equal the leader's");
    eventually(what, CONVERGE_TIMEOUT, async || {
        let local = cluster.all_queue_stats(lagging, Some("local")).await?;
        same_queues(&local, &reference)
    })
    .await;
    let metrics = cluster.raft_metrics(lagging).await.unwrap_or_else(|e| panic!("{e}"));
    let page = cluster.log_page(lagging, target, 1).await.expect("lagging node's /raft/log");
    let first_index = page.first_index.unwrap_or_else(|| panic!("node{lagging} /raft/log reports no first_index"));
    eprintln!("t50: node{lagging} caught up to {target}; first_index {first_index}, metrics {metrics}");
    assert!(
        metrics["snapshot_index"].as_u64().is_some() && first_index > lagging_last + 1,
        "node{lagging} was down at index {lagging_last} and the leader had purged past it, so it must have \
         installed a snapshot: /raft/log first_index {first_index}, metrics.raft {metrics}"
    );

    // Consuming through it continues where the cluster is: FIFO after the
    // consumed prefix, same ids and bodies; acks through it count.
    let next = consume_in_order(&cluster, &[lagging], MAIN_Q, &main, MAIN_CONSUMED, AFTER_CATCHUP).await;
    cluster.ack_expect(lagging, MAIN_Q, &next, AFTER_CATCHUP as u64).await;
    let next_side = consume_in_order(&cluster, &[lagging], SIDE_Q, &side, SIDE_CONSUMED, AFTER_CATCHUP).await;
    cluster.ack_expect(lagging, SIDE_Q, &next_side, AFTER_CATCHUP as u64).await;
    let main_left = (MAIN_MESSAGES - MAIN_CONSUMED - AFTER_CATCHUP) as u64;
    let stats = cluster
        .assert_stats(
            lagging,
            MAIN_Q,
            &[
                ("ready", main_left),
                ("in_flight", (MAIN_CONSUMED - MAIN_ACKED) as u64),
                ("produced_total", MAIN_MESSAGES as u64),
                ("consumed_total", (MAIN_CONSUMED + AFTER_CATCHUP) as u64),
                ("acked_total", (MAIN_ACKED + AFTER_CATCHUP) as u64),
            ],
            "through the caught-up node",
        )
        .await;
    cluster.wait_local_stats_equal(MAIN_Q, &stats, "t50 after consuming through the caught-up node").await;
    let side_left = (SIDE_MESSAGES - SIDE_CONSUMED - AFTER_CATCHUP) as u64;
    cluster
        .assert_stats(
            leader,
            SIDE_Q,
            &[("ready", side_left), ("in_flight", 0), ("delayed", SIDE_NACKED as u64)],
            "side queue after consuming through the caught-up node",
        )
        .await;
}

/// Produces `count` messages `{"queue":q,"seq":i}` in batches through the
/// nodes `via` in turn; returns their ids in order.
async fn produce_numbered(cluster: &Cluster, via: &[u64], q: &str, count: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for (round, start) in (0..count).step_by(BATCH).enumerate() {
        let batch: Vec<Value> =
            (start..(start + BATCH).min(count)).map(|seq| json!({"queue": q, "seq": seq})).collect();
        ids.extend(cluster.produce_batch_ok(via[round % via.len()], q, &batch, None).await);
    }
    ids
}

/// Consumes `count` messages of `q` in batches of at most 100 through the
/// nodes `via` in turn, asserting they are `ids[from..from + count]` in
/// order, first deliveries, with the bodies `produce_numbered` gave them.
async fn consume_in_order(
    cluster: &Cluster,
    via: &[u64],
    q: &str,
    ids: &[String],
    from: usize,
    count: usize,
) -> Vec<String> {
    let mut got = Vec::with_capacity(count);
    let mut round = 0;
    while got.len() < count {
        let max = (count - got.len()).min(100);
        let id = via[round % via.len()];
        let request = Consume::new(q, "snap-worker").max(max as u64).visibility_ms(LONG_VISIBILITY_MS);
        let deliveries = cluster.consume_ok(id, &request).await;
        assert_eq!(deliveries.len(), max, "node{id} {request}: {} messages", deliveries.len());
        for d in &deliveries {
            let seq = from + got.len();
            got.push(d.id.clone());
            assert_eq!(
                (&d.id, &d.message, d.delivery_count),
                (&ids[seq], &json!({"queue": q, "seq": seq}), 1),
                "node{id}: message {seq} of {q} in FIFO order"
            );
        }
        round += 1;
    }
    got
}

/// `Ok` when both views list the same queues with equal stats.
fn same_queues(local: &BTreeMap<String, Stats>, reference: &BTreeMap<String, Stats>) -> Result<(), String> {
    if local.keys().ne(reference.keys()) {
        return Err(format!("queues {:?}, leader has {:?}", local.keys(), reference.keys()));
    }
    for (q, stats) in local {
        let expected = &reference[q];
        if stats.counts() != expected.counts() {
            return Err(format!("{q}: {} vs the leader's {}", stats.raw, expected.raw));
        }
    }
    Ok(())
}
