//! Rule (API.md, "Coherent cache (MESI)"): a put's value is durable
//! (replicated) before the put returns, and is written back to the backing
//! memory later. So SIGKILL of the node holding the line in M, right after
//! its put returned, loses nothing: the other nodes read the value, and
//! Redis eventually holds it. Done with a follower as the holder, then with
//! the leader.

use std::time::Duration;

use serde_json::{json, Value};

use crate::client::Written;
use crate::common::redis::RedisServer;
use crate::common::{eventually, Cluster, ClusterOptions};
use crate::t10_mesi_walk::redis_holds;

/// Time for the survivors to serve the value (an election included).
const SERVE_TIMEOUT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn sigkill_of_the_m_holder_right_after_its_put_loses_nothing() {
    let redis = RedisServer::start("t30_cache_kill_holder").await;
    let options = ClusterOptions::default().env("REDIS_URL", redis.url()).env("CACHE_FLUSH_MS", 200);
    let mut cluster = Cluster::start("t30_cache_kill_holder", options).await;
    let nodes = cluster.nodes_by_role().await;

    // A follower holds the line in M and dies.
    let key = "kh-follower";
    let value = json!({"written_by": "follower", "n": 1});
    let written =
        cluster.cache_put(nodes.a, key, &value).await.unwrap_or_else(|e| panic!("put via node{}: {e}", nodes.a));
    cluster.kill(nodes.a);
    for id in [nodes.leader, nodes.b] {
        survivor_reads(&cluster, id, key, &value, &written, &format!("node{} (M holder) killed", nodes.a)).await;
    }
    redis_holds(&redis, key, written.version, &value, "the value of a killed M holder").await;
    cluster.restart(nodes.a).await;
    survivor_reads(&cluster, nodes.a, key, &value, &written, "the killed holder restarted").await;

    // The leader holds the line in M and dies.
    let leader = cluster.wait_for_leader().await;
    let survivors = cluster.followers_of(leader);
    let key = "kh-leader";
    let value = json!(["written by the leader", 2]);
    let written = cluster.cache_put(leader, key, &value).await.unwrap_or_else(|e| panic!("put via node{leader}: {e}"));
    cluster.kill(leader);
    cluster.wait_for_leader_among(&survivors, Some(leader)).await;
    for &id in &survivors {
        survivor_reads(&cluster, id, key, &value, &written, &format!("node{leader} (leader, M holder) killed")).await;
    }
    redis_holds(&redis, key, written.version, &value, "the value of a killed leader that held it in M").await;
    // The first key is still there too.
    for &id in &survivors {
        let context = "the first key after the leader's death";
        let read = cluster.cache_get(id, "kh-follower").await.unwrap_or_else(|e| panic!("{context}: {e}"));
        assert_eq!(read.value["written_by"], "follower", "{context}: node{id} read {read:?}");
    }
}

/// Polls node `id` until its get of `key` answers; the answer must be
/// exactly `value` at `written`'s version (or a later one, none is put).
/// Any other answer fails at once.
async fn survivor_reads(cluster: &Cluster, id: u64, key: &str, value: &Value, written: &Written, context: &str) {
    let what = format!("node{id} to serve {key} after {context}");
    let read = eventually(what, SERVE_TIMEOUT, async || {
        let reply = cluster.cache_get_reply(id, key).await?;
        match reply.status {
            200 => Ok(reply),
            // Transient while the cluster reacts to the death.
            503 | 408 => Err(format!("node{id}: {reply}")),
            _ => panic!("{context}: node{id} GET /cache/get?key={key} answered {reply}, expected the value {value}"),
        }
    })
    .await;
    let read = crate::client::parse_read(&read, key).unwrap_or_else(|e| panic!("{context}: node{id}: {e}"));
    assert_eq!(
        (&read.value, read.version),
        (value, written.version),
        "{context}: node{id} must read what the put returned ({value}, version {}), got {read:?}",
        written.version
    );
}
