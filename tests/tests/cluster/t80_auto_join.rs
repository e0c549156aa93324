//! Rule: a node started with `JOIN=<url of any member>` adds itself: it
//! joins as a learner, catches up with the log written before it existed,
//! becomes a voter, and stays a member across a restart (where `JOIN` is a
//! no-op).

use std::collections::BTreeMap;

use serde_json::json;

use crate::common::{Cluster, ClusterOptions, CONVERGE_TIMEOUT};

/// The node that joins by itself.
const JOINER: u64 = 4;

#[tokio::test]
async fn node_started_with_join_becomes_a_voter_with_the_whole_log() {
    let mut cluster = Cluster::start("t80_auto_join", ClusterOptions::default()).await;
    let leader = cluster.wait_for_leader().await;
    let before =
        cluster.append_retrying(&[1, 2, 3], &json!({"test": "t80", "before_join": true}), CONVERGE_TIMEOUT).await;

    // Asked through a follower: the member forwards the change to the leader.
    let via = cluster.followers_of(leader)[0];
    cluster.start_auto_joining_node(JOINER, via).await;
    for id in 1..=JOINER {
        cluster.wait_membership(id, JOINER, true).await;
    }
    let members = cluster.members(leader).await.expect("the leader's /cluster");
    assert_eq!(members[&JOINER]["addr"], json!(cluster.addr(JOINER)), "the joiner's advertised address: {members:?}");

    // It holds what was written before it joined, and follows new writes.
    cluster
        .assert_log_holds(JOINER, &BTreeMap::from([(before.index, json!({"test": "t80", "before_join": true}))]))
        .await;
    let data = json!({"test": "t80", "after_join": true});
    let after = cluster.append_retrying(&[1, 2, 3, JOINER], &data, CONVERGE_TIMEOUT).await;
    cluster.assert_log_holds(JOINER, &BTreeMap::from([(after.index, data)])).await;

    // A restart keeps it a member; it does not ask again or start a cluster of its own.
    cluster.kill(JOINER);
    cluster.restart(JOINER).await;
    let data = json!({"test": "t80", "after_restart": true});
    let later = cluster.append_retrying(&[1, 2, 3], &data, CONVERGE_TIMEOUT).await;
    cluster.assert_log_holds(JOINER, &BTreeMap::from([(later.index, data)])).await;
    let members = cluster.members(JOINER).await.expect("the joiner's /cluster");
    assert_eq!(members.len(), 4, "the joiner sees the four-node cluster after its restart: {members:?}");
}
