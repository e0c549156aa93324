//! Rule: a node that was down while the leader compacted its log into a
//! snapshot (and purged the entries the node lacks) catches up by receiving
//! that snapshot: it reaches the leader's applied index, its own log starts
//! after the snapshot, and it keeps following new appends.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{eventually, Cluster, ClusterOptions, CONVERGE_TIMEOUT};

/// `SNAPSHOT_ENTRIES` for this test: snapshots (and purges) come quickly.
const SNAPSHOT_ENTRIES: u64 = 20;

/// Appends made while the node is down.
const APPENDS_WHILE_DOWN: u64 = 100;

/// How long to wait for the leader's purge before appending more.
const PURGE_WAIT: Duration = Duration::from_secs(2);

/// More appends allowed if the leader has not purged far enough yet.
const EXTRA_APPENDS_MAX: u64 = 300;

#[tokio::test]
async fn node_behind_purged_log_catches_up_by_snapshot() {
    let options = ClusterOptions::default().snapshot_entries(SNAPSHOT_ENTRIES);
    let mut cluster = Cluster::start("t40_snapshot_catchup", options).await;
    let leader = cluster.wait_for_leader().await;
    let lagging = cluster.followers_of(leader)[0];
    let lagging_metrics = cluster.raft_metrics(lagging).await.expect("lagging node's /metrics");
    let lagging_last = lagging_metrics["last_log_index"]
        .as_u64()
        .unwrap_or_else(|| panic!("node{lagging} metrics.raft.last_log_index: {lagging_metrics}"));
    cluster.kill(lagging);
    let live = cluster.running();

    let mut acked: BTreeMap<u64, Value> = BTreeMap::new();
    let mut appended = 0;
    while appended < APPENDS_WHILE_DOWN {
        append(&cluster, &live, &mut acked, appended).await;
        appended += 1;
    }
    // Only if the leader no longer has entry lagging_last + 1 is a snapshot
    // the sole way to catch up; otherwise this would test plain replication.
    let leader = cluster.wait_for_leader_among(&live, None).await;
    loop {
        // The leader purges when its snapshot is built and no replication
        // stream uses the entries: give it a moment before writing more.
        let purged = cluster.purged_past(leader, lagging_last, PURGE_WAIT).await;
        match purged {
            Ok(metrics) => {
                eprintln!(
                    "t40_snapshot_catchup: node{lagging} down at index {lagging_last}; \
                     leader node{leader} after {appended} appends: {metrics}"
                );
                break;
            }
            Err(last) => assert!(
                appended < APPENDS_WHILE_DOWN + EXTRA_APPENDS_MAX,
                "leader node{leader} has not purged its log past index {lagging_last} after \
                 {appended} appends with SNAPSHOT_ENTRIES={SNAPSHOT_ENTRIES} ({last}); snapshot \
                 catch-up cannot happen. Does the server keep more log than SNAPSHOT_ENTRIES \
                 after a snapshot (openraft max_in_snapshot_log_to_keep)?"
            ),
        }
        for _ in 0..SNAPSHOT_ENTRIES {
            append(&cluster, &live, &mut acked, appended).await;
            appended += 1;
        }
    }
    let target = *acked.keys().last().expect("appends were acknowledged");

    cluster.restart(lagging).await;
    cluster.wait_applied(lagging, target).await;
    let what = format!("node{lagging}'s metrics.raft.snapshot_index to be set");
    let metrics = eventually(what, CONVERGE_TIMEOUT, async || {
        let metrics = cluster.raft_metrics(lagging).await?;
        match metrics["snapshot_index"].as_u64() {
            Some(_) => Ok(metrics),
            None => Err(format!("metrics.raft = {metrics}")),
        }
    })
    .await;
    // Ask for an index it surely has: what `from` below first_index does is not in the contract.
    let page = cluster.log_page(lagging, target, 1).await.expect("lagging node's /raft/log");
    let first_index = page.first_index.unwrap_or_else(|| panic!("node{lagging} /raft/log reports no first_index"));
    eprintln!(
        "t40_snapshot_catchup: node{lagging} caught up to {target}; first_index {first_index}, metrics {metrics}"
    );
    assert!(
        first_index > lagging_last + 1,
        "node{lagging} was down at index {lagging_last} and the leader had purged past it, so its log \
         should start after a received snapshot; /raft/log first_index = {first_index}"
    );
    // The entries it does hold after the snapshot are the acknowledged ones.
    let tail: BTreeMap<u64, Value> = acked.range(first_index..).map(|(i, d)| (*i, d.clone())).collect();
    cluster.assert_log_holds(lagging, &tail).await;

    // It keeps following: a new append reaches it.
    let data = json!({"test": "t40", "after_catchup": true});
    let fresh = cluster.append_retrying(&live, &data, CONVERGE_TIMEOUT).await;
    cluster.assert_log_holds(lagging, &BTreeMap::from([(fresh.index, data)])).await;
}

/// Appends entry number `seq` through the live nodes and records it.
async fn append(cluster: &Cluster, live: &[u64], acked: &mut BTreeMap<u64, Value>, seq: u64) {
    let data = json!({"test": "t40", "seq": seq});
    let appended = cluster.append_retrying(live, &data, CONVERGE_TIMEOUT).await;
    acked.insert(appended.index, data);
}
