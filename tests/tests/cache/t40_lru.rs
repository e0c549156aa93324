//! Rules (API.md, "Coherent cache (MESI)"): each node caches at most
//! `CACHE_CAPACITY` lines and evicts the least recently used one; an evicted
//! M line is written back to the backing memory first, so the key stays
//! readable with its last value.

use serde_json::json;

use crate::client::{prometheus_sample, VISIBLE_TIMEOUT};
use crate::common::redis::RedisServer;
use crate::common::{eventually, Cluster, ClusterOptions};
use crate::t10_mesi_walk::redis_holds;

#[tokio::test]
async fn the_least_recently_used_line_is_evicted_and_written_back() {
    let redis = RedisServer::start("t40_cache_lru").await;
    // No periodic flush during the test: only the eviction writes k2 back.
    let options =
        ClusterOptions::default().env("REDIS_URL", redis.url()).env("CACHE_CAPACITY", 3).env("CACHE_FLUSH_MS", 600_000);
    let cluster = Cluster::start("t40_cache_lru", options).await;
    let node = 1;
    let mut versions = Vec::new();
    for (i, name) in ["k1", "k2", "k3"].into_iter().enumerate() {
        let written = cluster.cache_put(node, name, &json!({"lru": i + 1})).await.unwrap_or_else(|e| panic!("{e}"));
        versions.push(written.version);
    }
    let state = cluster.cache_state_ok(node, "after three puts").await;
    assert_eq!(state.capacity, 3, "CACHE_CAPACITY=3: {}", state.raw);
    assert_eq!(state.keys(), ["k3", "k2", "k1"], "node{node}'s lines, most recently used first: {}", state.shown());
    // k2 is dirty in M: Redis has nothing yet, so finding it there later
    // shows the eviction's write-back (a write-through server would make
    // that check vacuous; say so).
    if let Some(entry) = redis.cache_entry("k2").await.unwrap_or_else(|e| panic!("{e}")) {
        eprintln!("note: redis already holds k2 before its eviction ({entry}): the write-back check proves less");
    }

    // k1 becomes more recently used than k2.
    let read = cluster.cache_get(node, "k1").await.unwrap_or_else(|e| panic!("{e}"));
    assert!(read.hit, "node{node} holds k1 in M: its read is a hit: {read:?}");
    assert_eq!(
        (read.value.clone(), read.version, read.state.as_str()),
        (json!({"lru": 1}), versions[0], "M"),
        "{read:?}"
    );

    let evictions_before = state.metrics.evictions;
    let written = cluster.cache_put(node, "k4", &json!({"lru": 4})).await.unwrap_or_else(|e| panic!("{e}"));
    let state = cluster.cache_state_ok(node, "after the fourth put").await;
    assert_eq!(
        state.keys(),
        ["k4", "k1", "k3"],
        "with capacity 3, putting k4 evicts the least recently used line, k2 (k1 was read after k2 was put): {}",
        state.shown()
    );
    assert_eq!(state.size, 3, "{}", state.raw);
    assert_eq!(state.line("k4").map(|l| (l.state.as_str(), l.version)), Some(("M", written.version)));
    assert!(
        state.metrics.evictions > evictions_before,
        "an eviction happened, evictions stayed {}",
        state.metrics.evictions
    );
    let text = cluster.prometheus_text(node).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(prometheus_sample(&text, "dsync_cache_evictions_total", &[]) >= Some(1.0), "dsync_cache_evictions_total");
    assert_eq!(prometheus_sample(&text, "dsync_cache_lines", &[]), Some(3.0), "dsync_cache_lines with capacity 3");

    redis_holds(&redis, "k2", versions[1], &json!({"lru": 2}), "the write-back of the evicted M line k2").await;
    // The eviction's write-back runs in the background: its count follows.
    eventually("node1 to count the evicted line's write-back", VISIBLE_TIMEOUT, async || {
        let writebacks = cluster.cache_state(node, None).await?.metrics.writebacks;
        if writebacks >= 1 {
            Ok(())
        } else {
            Err(format!("writebacks = {writebacks}"))
        }
    })
    .await;
    let read = cluster.cache_get(node, "k2").await.unwrap_or_else(|e| panic!("read of the evicted k2: {e}"));
    assert_eq!((read.value.clone(), read.version), (json!({"lru": 2}), versions[1]), "k2 after its eviction: {read:?}");
    assert!(!read.hit, "k2 was evicted: its read cannot be a hit: {read:?}");
    let state = cluster.cache_state_ok(node, "after reading k2 back").await;
    assert_eq!(state.size, 3, "still at most 3 lines: {}", state.shown());
    assert_eq!(state.keys()[0], "k2", "k2 is now the most recently used line: {}", state.shown());
}
