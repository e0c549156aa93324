//! Rules (API.md, "Events and metrics"): `/events` streams committed events
//! as SSE, `event:` named by the JSON's `type`; any node streams the events
//! of writes made through any node, in log order; a new leader is
//! announced with `leader.changed`.

use serde_json::json;

use crate::common::sse::{next_matching, subscribe};
use crate::common::{Cluster, ClusterOptions};

#[tokio::test]
async fn a_follower_streams_committed_events_in_log_order_and_leader_changes() {
    let mut cluster = Cluster::start("t10_events_stream", ClusterOptions::default()).await;
    let leader = cluster.wait_for_leader().await;
    let followers = cluster.followers_of(leader);
    let (watcher, writer) = (followers[0], followers[1]);
    let mut events = subscribe(cluster.api().addr(watcher)).await;

    // A lock taken through the leader, a produce through the other follower,
    // then the release: three entries, seen in that order.
    let grant = cluster.post(leader, "/locks/acquire", &json!({"resource": "ev-r", "owner": "ev-a"})).await.unwrap();
    assert_eq!(grant.status, 200, "{}", grant.text);
    let produced = cluster.post(writer, "/queue/produce", &json!({"queue": "ev-q", "message": 7})).await.unwrap();
    assert_eq!(produced.status, 200, "{}", produced.text);
    let released = cluster.post(leader, "/locks/release", &json!({"resource": "ev-r", "owner": "ev-a"})).await.unwrap();
    assert_eq!(released.body["released"], true, "{}", released.text);

    let (granted, _) =
        next_matching(&mut events, "lock.granted of ev-r", |e| e["type"] == "lock.granted" && e["resource"] == "ev-r")
            .await;
    assert_eq!(granted["owner"], "ev-a");
    assert_eq!(granted["fencing_token"], grant.body["fencing_token"], "the event carries the grant's token");
    let (queued, _) = next_matching(&mut events, "queue.produced of ev-q", |e| e["type"] == "queue.produced").await;
    assert_eq!(queued["queue"], "ev-q");
    assert_eq!(queued["ids"], produced.body["ids"], "the event lists the produced ids");
    let (gone, _) = next_matching(&mut events, "lock.released of ev-r", |e| e["type"] == "lock.released").await;
    assert_eq!(gone["owner"], "ev-a");
    let indexes: Vec<u64> = [&granted, &queued, &gone].iter().map(|e| e["index"].as_u64().expect("index")).collect();
    assert!(indexes.windows(2).all(|w| w[0] < w[1]), "events arrive in log order: {indexes:?}");

    // The watcher survives the leader's SIGKILL and announces its successor.
    cluster.kill(leader);
    let (changed, _) = next_matching(&mut events, "leader.changed", |e| e["type"] == "leader.changed").await;
    let new_leader = changed["leader"].as_str().expect("leader name").to_string();
    assert_ne!(new_leader, format!("node{leader}"), "the killed node is not the new leader: {changed}");
    assert!(changed["term"].as_u64().is_some(), "{changed}");
}
