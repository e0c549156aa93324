//! Rule: a cluster has one leader that every node agrees on, and an append
//! acknowledged by any node (a follower forwards it) is committed: it is in
//! the log of every node, at the acknowledged index, with the exact data.

use serde_json::json;

use crate::common::{eventually, Cluster, ClusterOptions, CONVERGE_TIMEOUT};

#[tokio::test]
async fn append_via_follower_is_committed_on_every_node() {
    let cluster = Cluster::start("t10_replication", ClusterOptions::default()).await;
    // start() already waited for all three to name the same leader.
    let leader = cluster.wait_for_leader().await;

    let leader_view = cluster.get_ok(leader, "/raft/leader").await.expect("leader's /raft/leader");
    assert_eq!(
        leader_view["leader_addr"],
        json!(cluster.addr(leader)),
        "/raft/leader must give the leader's address: {leader_view}"
    );
    for id in [1, 2, 3] {
        let health = cluster.health(id).await.expect("/health");
        let expected_role = if id == leader { "leader" } else { "follower" };
        assert_eq!(health["role"], expected_role, "node{id} /health role (leader is node{leader}): {health}");
        assert_eq!(health["node_id"], format!("node{id}"), "node{id} /health node_id: {health}");
    }

    let follower = cluster.followers_of(leader)[0];
    let data = json!({"test": "t10", "nested": {"list": [1, 2.5, "three", null, true]}});
    let appended = cluster.append_retrying(&[follower], &data, CONVERGE_TIMEOUT).await;
    assert!(appended.term >= 1, "append via node{follower}: term {}", appended.term);

    for id in [1, 2, 3] {
        let what = format!("entry {} ({data}) in node{id}'s /raft/log", appended.index);
        let entry = eventually(what, CONVERGE_TIMEOUT, async || {
            cluster.log_entry(id, appended.index).await?.ok_or_else(|| "not there yet".to_owned())
        })
        .await;
        assert_eq!(entry["data"], data, "node{id} entry {}: {entry}", appended.index);
        assert_eq!(entry["kind"], "command", "node{id} entry {}: {entry}", appended.index);
        assert_eq!(entry["term"], json!(appended.term), "node{id} entry {}: {entry}", appended.index);
        assert!(entry["command"].is_string(), "node{id} entry {} has no command text: {entry}", appended.index);
    }

    // Appends through each node in turn are ordered: indices strictly increase.
    let mut previous = appended.index;
    for id in [1, 2, 3] {
        let next = cluster.append_retrying(&[id], &json!({"test": "t10", "via": id}), CONVERGE_TIMEOUT).await;
        assert!(next.index > previous, "append via node{id} got index {} after index {previous}", next.index);
        previous = next.index;
    }
}
