//! Rule: membership changes go through the cluster and can be asked of any
//! member. `POST /cluster/add` returns once the new node is a voter that
//! receives the log; `POST /cluster/remove` returns once it is no longer a
//! member, and the remaining nodes keep committing on their own.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use crate::common::api::members_of;
use crate::common::{Cluster, ClusterOptions, CONVERGE_TIMEOUT};

/// The node that joins and leaves.
const JOINER: u64 = 4;

/// Time allowed for a membership change: learner catch-up plus joint consensus.
const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn added_node_votes_and_removed_node_leaves_a_working_cluster() {
    let mut cluster = Cluster::start("t50_membership", ClusterOptions::default()).await;
    let leader = cluster.wait_for_leader().await;
    let via = cluster.followers_of(leader)[0];
    let before =
        cluster.append_retrying(&[1, 2, 3], &json!({"test": "t50", "before_join": true}), CONVERGE_TIMEOUT).await;

    cluster.start_joining_node(JOINER).await;
    let joiner_addr = cluster.addr(JOINER);
    let request = json!({"node_id": format!("node{JOINER}"), "addr": joiner_addr});
    // Sent to a follower: it must forward the change to the leader.
    let reply =
        cluster.post_with_timeout(via, "/cluster/add", &request, MEMBERSHIP_TIMEOUT).await.expect("POST /cluster/add");
    assert_eq!(reply.status, 200, "node{via} POST /cluster/add {request}: {reply}");
    let members = members_of(&reply.body).unwrap_or_else(|e| panic!("/cluster/add reply: {e}"));
    let joined =
        members.get(&JOINER).unwrap_or_else(|| panic!("/cluster/add reply does not list node{JOINER}: {reply}"));
    assert_eq!(joined["voter"], true, "/cluster/add returns once node{JOINER} votes: {reply}");
    assert_eq!(joined["addr"], json!(joiner_addr), "node{JOINER}'s address in {reply}");
    assert_eq!(members.len(), 4, "members after the add: {reply}");
    for id in 1..=JOINER {
        cluster.wait_membership(id, JOINER, true).await;
    }

    // The joiner holds the log from before it joined and follows new appends.
    let data = json!({"test": "t50", "with_joiner": true});
    let during = cluster.append_retrying(&[1, 2, 3], &data, CONVERGE_TIMEOUT).await;
    let joiner_expects = BTreeMap::from([(during.index, data)]);
    cluster.assert_log_holds(JOINER, &joiner_expects).await;
    let early = cluster
        .log_entry(JOINER, before.index)
        .await
        .expect("node4's /raft/log")
        .unwrap_or_else(|| panic!("node{JOINER} lacks entry {} from before it joined", before.index));
    assert_eq!(early["data"], json!({"test": "t50", "before_join": true}), "node{JOINER}: {early}");

    // Remove it, again through a member that is not the leader.
    let leader = cluster.wait_for_leader_among(&[1, 2, 3, JOINER], None).await;
    let via = [1, 2, 3].into_iter().find(|&id| id != leader).expect("a non-leader member");
    let request = json!({"node_id": format!("node{JOINER}")});
    let reply = cluster
        .post_with_timeout(via, "/cluster/remove", &request, MEMBERSHIP_TIMEOUT)
        .await
        .expect("POST /cluster/remove");
    assert_eq!(reply.status, 200, "node{via} POST /cluster/remove {request}: {reply}");
    let members = members_of(&reply.body).unwrap_or_else(|e| panic!("/cluster/remove reply: {e}"));
    assert!(!members.contains_key(&JOINER), "/cluster/remove reply still lists node{JOINER}: {reply}");
    assert_eq!(members.keys().copied().collect::<Vec<_>>(), [1, 2, 3], "members after the remove: {reply}");
    for id in 1..=3 {
        cluster.wait_membership(id, JOINER, false).await;
    }

    // The three commit without node4: stop it so it cannot help.
    cluster.kill(JOINER);
    cluster.wait_for_leader().await;
    let mut acked = BTreeMap::new();
    for id in 1..=3 {
        let data = json!({"test": "t50", "after_remove_via": id});
        let appended = cluster.append_retrying(&[id], &data, CONVERGE_TIMEOUT).await;
        acked.insert(appended.index, data);
    }
    for id in 1..=3 {
        cluster.assert_log_holds(id, &acked).await;
    }
}

/// Rule: a node that cannot catch up is never made a voter. Adding an
/// unreachable address fails with 503 and leaves it a learner, which counts
/// for no quorum: writes go on, and the learner can be removed.
#[tokio::test]
async fn unreachable_node_is_not_promoted_and_the_cluster_keeps_its_quorum() {
    let cluster =
        Cluster::start("t50_unreachable_join", ClusterOptions::default().env("REQUEST_TIMEOUT_MS", 1000)).await;
    let leader = cluster.wait_for_leader().await;
    let request = json!({"node_id": "node9", "addr": "http://127.0.0.1:1"});
    let reply = cluster
        .post_with_timeout(leader, "/cluster/add", &request, MEMBERSHIP_TIMEOUT)
        .await
        .expect("POST /cluster/add");
    crate::common::assert_contract_error(&reply, 503, "unavailable", "adding a node nobody can reach");

    let members = cluster.members(leader).await.expect("the leader's /cluster");
    assert!(
        members.get(&9).is_none_or(|m| m["voter"] == false),
        "an unreachable node must not become a voter: {members:?}"
    );
    cluster.append_retrying(&[1, 2, 3], &json!({"test": "t50", "learner_stuck": true}), CONVERGE_TIMEOUT).await;
    let reply = cluster
        .post_with_timeout(leader, "/cluster/remove", &json!({"node_id": "node9"}), MEMBERSHIP_TIMEOUT)
        .await
        .expect("POST /cluster/remove");
    assert_eq!(reply.status, 200, "the stuck learner can be removed: {reply}");
    for id in 1..=3 {
        cluster.wait_membership(id, 9, false).await;
    }
}
