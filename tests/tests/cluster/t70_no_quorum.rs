//! Rule: without a quorum nothing is committed, and a write says so: it fails
//! with 503 `unavailable` (retryable) after a bounded wait instead of hanging
//! or being acknowledged, and the lone leader's `/health` says `degraded`.
//! Once a quorum is back, writes succeed again.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{assert_contract_error, eventually, Cluster, ClusterOptions, CONVERGE_TIMEOUT};

/// Client-side bound: the server gives up after "a few seconds".
const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

#[tokio::test]
async fn append_without_quorum_fails_with_503_unavailable() {
    let mut cluster = Cluster::start("t70_no_quorum", ClusterOptions::default()).await;
    let leader = cluster.wait_for_leader().await;
    let followers = cluster.followers_of(leader);
    for &id in &followers {
        cluster.kill(id);
    }

    // The lone leader cannot replicate to a majority: no acknowledgement.
    let started = Instant::now();
    let data = json!({"test": "t70", "without_quorum": true});
    let reply = cluster
        .post_with_timeout(leader, "/raft/append", &json!({ "data": data }), CLIENT_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("node{leader} (alone) POST /raft/append: no reply: {e}"));
    eprintln!("t70_no_quorum: node{leader} alone answered the append after {:.3?}: {reply}", started.elapsed());
    let context = format!("POST /raft/append on node{leader}, the only live node of three");
    assert_contract_error(&reply, 503, "unavailable", &context);
    // It still serves /health, and says it is degraded: a load balancer's
    // health check must not keep sending writes to a leader without a quorum.
    eventually(format!("node{leader}'s /health to say degraded without a quorum"), CONVERGE_TIMEOUT, async || {
        let health = cluster.health(leader).await?;
        if health["status"] == "degraded" {
            Ok(())
        } else {
            Err(format!("/health is {health}"))
        }
    })
    .await;

    // One follower back gives a majority of two: writes are acknowledged again.
    cluster.restart(followers[0]).await;
    let live = [leader, followers[0]];
    cluster.wait_for_leader_among(&live, None).await;
    let appended = cluster.append_retrying(&live, &json!({"test": "t70", "quorum_back": true}), CONVERGE_TIMEOUT).await;
    eprintln!("t70_no_quorum: quorum back, append committed at index {}", appended.index);
}
