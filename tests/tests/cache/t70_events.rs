//! Rules (API.md, "Events and metrics"): `/events` streams the cache's
//! committed events, `cache.invalidated` (on every put, invalidate and
//! delete, with the reason and the nodes whose copy was dropped) and
//! `cache.written_back`; with `REDIS_URL` set, the same events (the same
//! JSON, `index` included) are published on the Redis channel `dsync.events`.

use serde_json::Value;

use crate::common::redis::{RedisServer, EVENTS_CHANNEL};
use crate::common::sse::{next_matching, subscribe, EVENT_DEADLINE};
use crate::common::{Cluster, ClusterOptions};

#[tokio::test]
async fn events_stream_shows_cache_invalidations_and_write_backs() {
    let cluster = Cluster::start("t70_cache_events_sse", ClusterOptions::default()).await;
    let nodes = cluster.nodes_by_role().await;
    let mut events = subscribe(cluster.api().addr(nodes.b)).await;
    let key = "ev-key";

    let written = cluster.cache_put(nodes.a, key, &serde_json::json!(1)).await.unwrap_or_else(|e| panic!("{e}"));
    let put = next_matching(&mut events, "cache.invalidated (put)", |e| is_invalidated(e, key, "put")).await.0;
    assert_eq!(put["version"].as_u64(), Some(written.version), "the put's event carries its version: {put}");
    assert!(put["nodes"].is_array(), "cache.invalidated lists the nodes whose copy was dropped: {put}");
    assert!(put["index"].as_u64().is_some(), "the event carries its entry's index: {put}");

    // A peer read of the M line writes it back.
    let read = cluster.cache_get(nodes.leader, key).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read.version, written.version);
    let back =
        next_matching(&mut events, "cache.written_back", |e| e["type"] == "cache.written_back" && e["key"] == key)
            .await
            .0;
    assert_eq!(back["version"].as_u64(), Some(written.version), "the write-back's version: {back}");

    // A second put drops the two sharers' copies and names them.
    let second = cluster.cache_put(nodes.b, key, &serde_json::json!(2)).await.unwrap_or_else(|e| panic!("{e}"));
    let put = next_matching(&mut events, "cache.invalidated of the second put", |e| {
        is_invalidated(e, key, "put") && e["version"].as_u64() == Some(second.version)
    })
    .await
    .0;
    let mut dropped: Vec<String> = put["nodes"]
        .as_array()
        .map(|n| n.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    dropped.sort();
    let mut sharers = vec![format!("node{}", nodes.a), format!("node{}", nodes.leader)];
    sharers.sort();
    assert_eq!(dropped, sharers, "the second put dropped the copies of the two sharers: {put}");

    cluster.cache_invalidate(nodes.leader, key).await.unwrap_or_else(|e| panic!("{e}"));
    next_matching(&mut events, "cache.invalidated (invalidate)", |e| is_invalidated(e, key, "invalidate")).await;
    cluster.cache_delete(nodes.a, key).await.unwrap_or_else(|e| panic!("{e}"));
    next_matching(&mut events, "cache.invalidated (delete)", |e| is_invalidated(e, key, "delete")).await;
}

#[tokio::test]
async fn redis_channel_carries_the_same_cache_events() {
    let redis = RedisServer::start("t70_cache_events_redis").await;
    let options = ClusterOptions::default().env("REDIS_URL", redis.url());
    let cluster = Cluster::start("t70_cache_events_redis", options).await;
    let nodes = cluster.nodes_by_role().await;
    let mut published = redis.subscribe(EVENTS_CHANNEL).await;
    let mut streamed = subscribe(cluster.api().addr(nodes.a)).await;
    let key = "ev-redis";

    let written = cluster.cache_put(nodes.b, key, &serde_json::json!({"x": 1})).await.unwrap_or_else(|e| panic!("{e}"));
    let from_sse =
        next_matching(&mut streamed, "cache.invalidated (put) on /events", |e| is_invalidated(e, key, "put")).await.0;
    let deadline = tokio::time::Instant::now() + EVENT_DEADLINE;
    let mut seen = Vec::new();
    let from_redis = loop {
        match tokio::time::timeout_at(deadline, published.recv()).await {
            Ok(Some(payload)) => {
                let event: Value = serde_json::from_str(&payload)
                    .unwrap_or_else(|e| panic!("{EVENTS_CHANNEL} carried a non-JSON message {payload:?}: {e}"));
                if is_invalidated(&event, key, "put") {
                    break event;
                }
                seen.push(event);
            }
            Ok(None) => panic!("the Redis subscription ended; seen {seen:?}"),
            Err(_) => panic!("no cache.invalidated of {key} on redis channel {EVENTS_CHANNEL} within {EVENT_DEADLINE:?}; seen {seen:?}"),
        }
    };
    assert_eq!(from_redis["version"].as_u64(), Some(written.version), "{from_redis}");
    assert_eq!(from_redis, from_sse, "the Redis channel and /events carry the same event JSON");
}

fn is_invalidated(event: &Value, key: &str, reason: &str) -> bool {
    event["type"] == "cache.invalidated" && event["key"] == key && event["reason"] == reason
}
