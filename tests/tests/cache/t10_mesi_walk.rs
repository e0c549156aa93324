//! Rules (API.md, "Coherent cache (MESI)"): a put leaves the writer's line in
//! M and no other copy; a read of a line held in M elsewhere is a miss that
//! downgrades the holder to S after writing it back, and leaves the reader
//! in S; a repeated read is a hit; a put elsewhere invalidates every copy
//! before it returns; a read of a key nobody holds gives E; invalidate drops
//! every copy (writing back a dirty one); delete removes the key from every
//! cache and from the backing memory. Each node's `/cache/state` and the
//! Prometheus families count what happened.
//!
//! The nodes are addressed as node1, node2, node3 whatever their Raft role.
//! The periodic flush is set far beyond the test's length so that every
//! state seen is the result of the walk's own requests.

use serde_json::{json, Value};

use crate::client::{prometheus_sample, VISIBLE_TIMEOUT};
use crate::common::redis::RedisServer;
use crate::common::{assert_contract_error, eventually, Cluster, ClusterOptions};

/// `CACHE_FLUSH_MS` of the walk: no periodic flush during the test.
const NO_FLUSH_MS: u64 = 600_000;

#[tokio::test]
async fn mesi_walk_over_three_nodes_with_embedded_backing() {
    let options = ClusterOptions::default().env("CACHE_FLUSH_MS", NO_FLUSH_MS);
    let cluster = Cluster::start("t10_cache_mesi_embedded", options).await;
    let mut miscounted = walk(&cluster, None).await;
    miscounted.extend(prometheus_families(&cluster, false).await);
    assert_counted(miscounted);
}

#[tokio::test]
async fn mesi_walk_over_three_nodes_with_redis_backing() {
    let redis = RedisServer::start("t10_cache_mesi_redis").await;
    let options = ClusterOptions::default().env("REDIS_URL", redis.url()).env("CACHE_FLUSH_MS", NO_FLUSH_MS);
    let cluster = Cluster::start("t10_cache_mesi_redis", options).await;
    let mut miscounted = walk(&cluster, Some(&redis)).await;
    miscounted.extend(prometheus_families(&cluster, true).await);
    assert_counted(miscounted);
}

/// Runs the walk, asserting every state and value at once; returns what the
/// cache's counters got wrong, so that a miscount does not hide what the
/// rest of the walk would show.
async fn walk(cluster: &Cluster, redis: Option<&RedisServer>) -> Vec<String> {
    let mut miscounted = Vec::new();
    let mut count = |ok: bool, what: String| {
        if !ok {
            miscounted.push(what);
        }
    };
    let backing = if redis.is_some() { "redis" } else { "embedded" };
    for id in 1..=3 {
        let state = cluster.cache_state_ok(id, "the cache state before the walk").await;
        assert_eq!(state.backing, backing, "node{id} reports backing {:?}: {}", state.backing, state.raw);
        assert_eq!(state.capacity, 100, "node{id}'s capacity is CACHE_CAPACITY's default 100: {}", state.raw);
        assert!(state.lines.is_empty(), "node{id} holds lines before any put: {}", state.shown());
    }
    let key = "walk";
    let reply = cluster.cache_get_reply(1, key).await.unwrap_or_else(|e| panic!("{e}"));
    assert_contract_error(&reply, 404, "not_found", "get of a key never put");

    // 1. put on node1: node1 holds it in M, nobody else holds it.
    let v1 = json!({"step": 1, "text": "first"});
    let w1 = cluster.cache_put(1, key, &v1).await.unwrap_or_else(|e| panic!("put v1 on node1: {e}"));
    cluster.expect_line(1, key, Some(("M", w1.version)), "after the put on node1").await;
    cluster.expect_line(2, key, None, "after the put on node1").await;
    cluster.expect_line(3, key, None, "after the put on node1").await;
    let m1 = cluster.cache_state_ok(1, "after the put on node1").await.metrics;
    count(m1.transition("I", "M") >= 1, format!("node1 counts its I->M transition: {:?}", m1.transitions));

    // 2. read on node2: a miss served by a peer read; node1 wrote back and
    //    went M -> S (in two committed steps: its write-back makes the
    //    line clean, M -> E, then node2's fill shares it, E -> S); node2 holds S.
    let read = cluster.cache_get(2, key).await.unwrap_or_else(|e| panic!("first read on node2: {e}"));
    assert_eq!((&read.value, read.version), (&v1, w1.version), "node2 reads what node1 put: {read:?}");
    assert!(!read.hit, "node2's first read cannot be a hit (it held no line): {read:?}");
    assert_eq!(read.state, "S", "node2's line after reading a line another node held in M: {read:?}");
    cluster.expect_line_eventually(1, key, Some(("S", w1.version)), "node1 after node2's read of its M line").await;
    cluster.expect_line(2, key, Some(("S", w1.version)), "node2 after its read").await;
    cluster.expect_line(3, key, None, "node3 after node2's read").await;
    let m1 = cluster.cache_state_ok(1, "after node2's read").await.metrics;
    count(
        m1.transition("M", "E") >= 1 && m1.transition("E", "S") >= 1,
        format!("node1 counts M->E (write-back) then E->S (shared): {:?}", m1.transitions),
    );
    count(m1.writebacks >= 1, format!("node1 wrote its M line back before sharing it: writebacks = {}", m1.writebacks));
    let m2 = cluster.cache_state_ok(2, "after node2's read").await.metrics;
    count(m2.misses >= 1, format!("node2 counts its miss: {m2:?}"));
    count(m2.transition("I", "S") >= 1, format!("node2 counts I->S: {:?}", m2.transitions));
    if let Some(redis) = redis {
        redis_holds(redis, key, w1.version, &v1, "node1's write-back when node2 read its M line").await;
    }

    // 3. read on node3: another sharer.
    let read = cluster.cache_get(3, key).await.unwrap_or_else(|e| panic!("first read on node3: {e}"));
    assert_eq!((&read.value, read.version, read.hit), (&v1, w1.version, false), "node3's first read: {read:?}");
    assert_eq!(read.state, "S", "node3's line when two nodes share the key: {read:?}");
    for id in 1..=3 {
        cluster.expect_line(id, key, Some(("S", w1.version)), "after node3's read (all three share)").await;
    }

    // 4. repeated read on node2: a hit from its own line.
    let hits_before = cluster.cache_state_ok(2, "before node2's second read").await.metrics.hits;
    let read = cluster.cache_get(2, key).await.unwrap_or_else(|e| panic!("second read on node2: {e}"));
    assert_eq!((&read.value, read.version), (&v1, w1.version), "node2's second read: {read:?}");
    assert!(read.hit, "node2's second read is served from its own S line, so hit is true: {read:?}");
    assert_eq!(read.state, "S", "{read:?}");
    let m2 = cluster.cache_state_ok(2, "after node2's second read").await.metrics;
    count(m2.hits > hits_before, format!("node2's hits did not grow with its hit: {hits_before} -> {}", m2.hits));
    count(m2.hit_ratio > 0.0, format!("node2 has a hit, yet hit_ratio is {}", m2.hit_ratio));

    // 5. put on node3: node3 holds M; the copies of node1 and node2 are gone
    //    by the time the put returns.
    let v2 = json!(["second", 2]);
    let w2 = cluster.cache_put(3, key, &v2).await.unwrap_or_else(|e| panic!("put v2 on node3: {e}"));
    assert!(w2.version > w1.version, "versions of a key increase: {} then {}", w1.version, w2.version);
    cluster.expect_line(1, key, None, "node1 right after the put on node3 returned").await;
    cluster.expect_line(2, key, None, "node2 right after the put on node3 returned").await;
    cluster.expect_line(3, key, Some(("M", w2.version)), "node3 after its put").await;
    let mut sent = 0;
    for id in 1..=3 {
        let metrics = cluster.cache_state_ok(id, "after the put on node3").await.metrics;
        sent += metrics.invalidations_sent;
        if id != 3 {
            count(
                metrics.invalidations >= 1,
                format!("node{id} dropped its copy but counts no invalidation: {metrics:?}"),
            );
            count(metrics.transition("S", "I") >= 1, format!("node{id} counts S->I: {:?}", metrics.transitions));
        } else {
            assert!(
                metrics.transition("S", "M") >= 1,
                "node3 wrote while in S: counts S->M: {:?}",
                metrics.transitions
            );
        }
    }
    count(sent >= 1, "two copies were invalidated, yet no node counts invalidations_sent".to_owned());

    // 6. read on node1: the new value, a miss.
    let read = cluster.cache_get(1, key).await.unwrap_or_else(|e| panic!("read on node1 after the put: {e}"));
    assert_eq!((&read.value, read.version), (&v2, w2.version), "node1 reads node3's newer value: {read:?}");
    assert!(!read.hit, "node1 lost its line to node3's put; its read cannot be a hit: {read:?}");
    assert_eq!(read.state, "S", "{read:?}");
    cluster.expect_line_eventually(3, key, Some(("S", w2.version)), "node3 after node1 read its M line").await;
    if let Some(redis) = redis {
        redis_holds(redis, key, w2.version, &v2, "node3's write-back when node1 read its M line").await;
    }

    // 7. exclusive: a key nobody else holds is read into E.
    let lone = "walk-exclusive";
    let v3 = json!("third");
    let w3 = cluster.cache_put(2, lone, &v3).await.unwrap_or_else(|e| panic!("put {lone} on node2: {e}"));
    cluster.cache_invalidate(1, lone).await.unwrap_or_else(|e| panic!("invalidate {lone} via node1: {e}"));
    let what = format!("every node to drop its line of {lone} after the invalidate");
    eventually(what, VISIBLE_TIMEOUT, async || {
        for id in 1..=3 {
            if let Some(line) = cluster.cache_line(id, lone).await? {
                return Err(format!("node{id} still holds {line:?}"));
            }
        }
        Ok(())
    })
    .await;
    if let Some(redis) = redis {
        redis_holds(redis, lone, w3.version, &v3, "the write-back of a dirty line on invalidate").await;
    }
    let read = cluster.cache_get(3, lone).await.unwrap_or_else(|e| panic!("read {lone} on node3: {e}"));
    assert_eq!((&read.value, read.version), (&v3, w3.version), "invalidate keeps the value: {read:?}");
    assert_eq!(read.state, "E", "node3 reads a key no node holds: E expected: {read:?}");
    assert!(!read.hit, "{read:?}");
    let read = cluster.cache_get(3, lone).await.unwrap_or_else(|e| panic!("second read {lone} on node3: {e}"));
    assert!(read.hit && read.state == "E", "node3's second read is a hit in E: {read:?}");
    cluster.expect_line(1, lone, None, "node1 after node3's exclusive read").await;
    cluster.expect_line(2, lone, None, "node2 after node3's exclusive read").await;
    let v4 = json!({"fourth": null});
    let w4 = cluster.cache_put(3, lone, &v4).await.unwrap_or_else(|e| panic!("put {lone} on node3: {e}"));
    assert!(w4.version > w3.version, "versions of a key increase: {} then {}", w3.version, w4.version);
    cluster.expect_line(3, lone, Some(("M", w4.version)), "node3 after writing its E line").await;
    let m3 = cluster.cache_state_ok(3, "after the exclusive steps").await.metrics;
    count(m3.transition("I", "E") >= 1 && m3.transition("E", "M") >= 1, format!("node3 counts I->E and E->M: {m3:?}"));

    // 8. delete: gone from every cache and from the backing memory.
    cluster.cache_delete(2, key).await.unwrap_or_else(|e| panic!("delete {key} via node2: {e}"));
    for id in 1..=3 {
        let reply = cluster.cache_get_reply(id, key).await.unwrap_or_else(|e| panic!("{e}"));
        assert_contract_error(&reply, 404, "not_found", &format!("get of the deleted key on node{id}"));
        cluster.expect_line(id, key, None, "after the delete").await;
    }
    let reply = cluster.cache_delete_reply(3, key).await.unwrap_or_else(|e| panic!("{e}"));
    assert_contract_error(&reply, 404, "not_found", "a second delete of the key");
    let reply = cluster.cache_invalidate_reply(1, key).await.unwrap_or_else(|e| panic!("{e}"));
    assert_contract_error(&reply, 404, "not_found", "invalidate of the deleted key");
    if let Some(redis) = redis {
        let what = format!("redis to drop {}{key} after the delete", crate::common::redis::CACHE_KEY_PREFIX);
        eventually(what, VISIBLE_TIMEOUT, async || match redis.cache_entry(key).await? {
            None => Ok(()),
            Some(entry) => Err(format!("it holds {entry}")),
        })
        .await;
    }
    // The other key is untouched by the delete.
    let read = cluster.cache_get(1, lone).await.unwrap_or_else(|e| panic!("read {lone} after the delete: {e}"));
    assert_eq!((&read.value, read.version), (&v4, w4.version), "delete of {key} touched {lone}: {read:?}");
    miscounted
}

/// Fails with every miscount the walk and the Prometheus check found.
fn assert_counted(miscounted: Vec<String>) {
    assert!(
        miscounted.is_empty(),
        "the walk's states and values were right, but the cache's counters are not:\n  {}",
        miscounted.join("\n  ")
    );
}

/// Polls until Redis holds `{"version": version, "value": value}` for `key`.
pub async fn redis_holds(redis: &RedisServer, key: &str, version: u64, value: &Value, why: &str) {
    let expected = json!({"version": version, "value": value});
    let what = format!("redis {}{key} to hold {expected} ({why})", crate::common::redis::CACHE_KEY_PREFIX);
    eventually(what, VISIBLE_TIMEOUT, async || match redis.cache_entry(key).await? {
        Some(entry) if entry["version"] == expected["version"] && entry["value"] == expected["value"] => Ok(()),
        other => Err(format!("it holds {other:?}")),
    })
    .await;
}

/// The cache's Prometheus families, after the walk: every node exposes them,
/// and they count what the walk did.
async fn prometheus_families(cluster: &Cluster, with_redis: bool) -> Vec<String> {
    let mut miscounted = Vec::new();
    let mut count = |ok: bool, what: String| {
        if !ok {
            miscounted.push(what);
        }
    };
    let mut texts = Vec::new();
    for id in 1..=3 {
        let text = cluster.prometheus_text(id).await.unwrap_or_else(|e| panic!("{e}"));
        for family in [
            "dsync_cache_hits_total",
            "dsync_cache_misses_total",
            "dsync_cache_evictions_total",
            "dsync_cache_writebacks_total",
            "dsync_cache_peer_fetches_total",
            "dsync_cache_backing_errors_total",
            "dsync_cache_lines",
        ] {
            assert!(
                prometheus_sample(&text, family, &[]).is_some(),
                "node{id}'s /metrics?format=prometheus has no sample of {family}"
            );
        }
        texts.push(text);
    }
    let state = cluster.cache_state_ok(3, "the lines gauge").await;
    let sample = |id: usize, name: &str, labels: &[(&str, &str)]| prometheus_sample(&texts[id - 1], name, labels);
    let total = |name: &str| (1..=3).filter_map(|id| sample(id, name, &[])).sum::<f64>();
    let m_to_e = [("from", "M"), ("to", "E")];
    let e_to_s = [("from", "E"), ("to", "S")];
    let checks = [
        (
            sample(2, "dsync_cache_hits_total", &[]) >= Some(1.0),
            "node2 had a hit: dsync_cache_hits_total >= 1".to_owned(),
        ),
        (
            sample(2, "dsync_cache_misses_total", &[]) >= Some(1.0),
            "node2 had a miss: dsync_cache_misses_total >= 1".into(),
        ),
        (
            sample(1, "dsync_cache_transitions_total", &m_to_e) >= Some(1.0)
                && sample(1, "dsync_cache_transitions_total", &e_to_s) >= Some(1.0),
            format!(
                "node1 went M->E->S: dsync_cache_transitions_total M->E is {:?}, E->S is {:?}",
                sample(1, "dsync_cache_transitions_total", &m_to_e),
                sample(1, "dsync_cache_transitions_total", &e_to_s)
            ),
        ),
        (
            total("dsync_cache_writebacks_total") >= 2.0,
            format!(
                "two M lines were written back on peer reads: dsync_cache_writebacks_total summed is {}",
                total("dsync_cache_writebacks_total")
            ),
        ),
        (
            total("dsync_cache_peer_fetches_total") >= 1.0,
            "reads were served by peers: dsync_cache_peer_fetches_total".into(),
        ),
        (
            sample(3, "dsync_cache_lines", &[]) == Some(state.size as f64),
            format!(
                "node3's dsync_cache_lines gauge is {:?}, its /cache/state size {} ({})",
                sample(3, "dsync_cache_lines", &[]),
                state.size,
                state.shown()
            ),
        ),
        (
            !with_redis || total("dsync_cache_backing_seconds_count") >= 1.0,
            "write-backs went to Redis, yet dsync_cache_backing_seconds has no observation on any node".into(),
        ),
    ];
    for (ok, what) in checks {
        count(ok, what);
    }
    miscounted
}
