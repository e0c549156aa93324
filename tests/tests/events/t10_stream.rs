//! Rules (API.md, "Events and metrics"): `/events` streams committed events
//! as SSE, `event:` named by the JSON's `type`; any node streams the events
//! of writes made through any node, in log order; a new leader is
//! announced with `leader.changed`.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::common::{Cluster, ClusterOptions};

/// How long an event may take to reach a subscriber.
const EVENT_DEADLINE: Duration = Duration::from_secs(10);

/// Opens `/events` on `base` and forwards each `(event name, data JSON)`.
async fn subscribe(base: String) -> mpsc::UnboundedReceiver<(String, Value)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut reply = reqwest::Client::new()
        .get(format!("{base}/events"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {base}/events: {e}"));
    assert_eq!(reply.status(), 200, "GET /events answers 200");
    let content_type = reply.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(content_type.starts_with("text/event-stream"), "content type {content_type:?}");
    tokio::spawn(async move {
        let (mut buffer, mut name) = (String::new(), String::new());
        while let Ok(Some(chunk)) = reply.chunk().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find('\n') {
                let line = buffer[..end].trim_end_matches('\r').to_string();
                buffer.drain(..=end);
                if let Some(event) = line.strip_prefix("event: ") {
                    name = event.to_string();
                } else if let Some(data) = line.strip_prefix("data: ") {
                    let value: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("bad data {data:?}: {e}"));
                    if tx.send((std::mem::take(&mut name), value)).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// The next event matching `wanted`, failing after the deadline; events
/// passed over on the way are returned too, in order.
async fn next_matching(
    events: &mut mpsc::UnboundedReceiver<(String, Value)>,
    what: &str,
    wanted: impl Fn(&Value) -> bool,
) -> (Value, Vec<Value>) {
    let mut skipped = Vec::new();
    let deadline = tokio::time::Instant::now() + EVENT_DEADLINE;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some((name, data))) => {
                assert_eq!(Some(name.as_str()), data["type"].as_str(), "the SSE event is named by its type: {data}");
                if wanted(&data) {
                    return (data, skipped);
                }
                skipped.push(data);
            }
            Ok(None) => panic!("the event stream ended while waiting for {what}; seen {skipped:?}"),
            Err(_) => panic!("no {what} within {EVENT_DEADLINE:?}; seen {skipped:?}"),
        }
    }
}

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
