//! Rules (API.md, "Coherent cache (MESI)"): a put's value is durable in the
//! replicated store before it returns; Redis is only the backing memory the
//! lines are written back to. So while Redis is down, puts and reads go on
//! (with the latest values), locks and queues are unaffected, the failed
//! write-backs are counted, and once Redis is back it receives the latest
//! value of every key written during the outage (periodic flush, here every
//! 200 ms).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::client::{parse_read, parse_written, VISIBLE_TIMEOUT};
use crate::common::api::REQUEST_TIMEOUT;
use crate::common::redis::RedisServer;
use crate::common::{eventually, Api, Cluster, ClusterOptions};
use crate::t10_mesi_walk::redis_holds;

/// Keys of the traffic.
const KEYS: usize = 4;

/// Longest a put or a lock/queue call may take while Redis is down.
const CALL_BOUND: Duration = Duration::from_secs(5);

/// Full rounds of traffic (every key put and read) while Redis is down.
const OUTAGE_ROUNDS: usize = 6;

/// Time for Redis to catch up after its restart.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);

fn key(k: usize) -> String {
    format!("ro-{k}")
}

/// The latest put of each key, and what went wrong.
#[derive(Default)]
struct Traffic {
    latest: Vec<Option<(Value, u64, Instant)>>,
    failures: Vec<String>,
}

#[tokio::test]
async fn a_redis_outage_does_not_stop_the_cache_and_redis_catches_up() {
    let mut redis = RedisServer::start("t50_cache_redis_outage").await;
    let options = ClusterOptions::default().env("REDIS_URL", redis.url()).env("CACHE_FLUSH_MS", 200);
    let cluster = Cluster::start("t50_cache_redis_outage", options).await;
    let nodes = cluster.nodes_by_role().await;
    let traffic = Arc::new(Mutex::new(Traffic { latest: vec![None; KEYS], failures: Vec::new() }));
    let rounds = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(run_traffic(cluster.api().clone(), traffic.clone(), rounds.clone(), stop.clone()));

    let wait_rounds = async |at_least: usize, what: &str| {
        eventually(what, Duration::from_secs(60), async || {
            let done = rounds.load(Ordering::SeqCst);
            let failures = traffic.lock().unwrap().failures.clone();
            if !failures.is_empty() {
                panic!("the cache traffic failed (first 10):\n  {}", failures[..failures.len().min(10)].join("\n  "));
            }
            if done >= at_least {
                Ok(done)
            } else {
                Err(format!("{done} rounds done"))
            }
        })
        .await
    };
    let before = wait_rounds(2, "two rounds of traffic with Redis up").await;

    redis.kill();
    let killed_at = Instant::now();
    locks_and_queues_work(cluster.api(), nodes.a, nodes.b).await;
    wait_rounds(before + OUTAGE_ROUNDS + 1, "cache traffic to go on while Redis is down").await;
    let what = "a node to count the failed write-backs to the dead Redis (backing_errors)";
    eventually(what, VISIBLE_TIMEOUT, async || {
        let mut seen = Vec::new();
        for id in 1..=3 {
            seen.push(cluster.cache_state(id, None).await?.metrics.backing_errors);
        }
        if seen.iter().any(|&errors| errors > 0) {
            Ok(())
        } else {
            Err(format!("backing_errors per node: {seen:?}"))
        }
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    tokio::time::timeout(CALL_BOUND * 2 + REQUEST_TIMEOUT, task)
        .await
        .expect("the traffic task stops")
        .expect("the traffic task does not panic");
    let traffic = std::mem::take(&mut *traffic.lock().unwrap());
    assert!(
        traffic.failures.is_empty(),
        "the cache traffic failed while Redis was down (first 10):\n  {}",
        traffic.failures[..traffic.failures.len().min(10)].join("\n  ")
    );

    redis.start_again().await;
    for (k, latest) in traffic.latest.iter().enumerate() {
        let (value, version, sent) = latest.clone().unwrap_or_else(|| panic!("{} was never put", key(k)));
        assert!(sent > killed_at, "{}'s last put was sent before Redis was killed", key(k));
        let why = "the latest value put while Redis was down, after Redis restarted";
        tokio::time::timeout(CATCH_UP_TIMEOUT, redis_holds(&redis, &key(k), version, &value, why))
            .await
            .unwrap_or_else(|_| panic!("redis did not catch up on {} within {CATCH_UP_TIMEOUT:?}", key(k)));
        for id in 1..=3 {
            let read = cluster.cache_get(id, &key(k)).await.unwrap_or_else(|e| panic!("after the outage: {e}"));
            assert_eq!((&read.value, read.version), (&value, version), "node{id} after the outage: {read:?}");
        }
    }
}

/// Rounds of: for every key, a put through one node and a read of it through
/// the next, which must return exactly what was put (one writer per key).
async fn run_traffic(api: Api, traffic: Arc<Mutex<Traffic>>, rounds: Arc<AtomicUsize>, stop: Arc<AtomicBool>) {
    let start = Instant::now();
    for round in 0.. {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        for k in 0..KEYS {
            let writer = 1 + ((round + k) % 3) as u64;
            let reader = 1 + ((round + k + 1) % 3) as u64;
            let name = key(k);
            let value = json!({"round": round, "key": k});
            let sent = Instant::now();
            let at = format!("t={:.1?}", sent - start);
            let put = api.cache_put_reply(writer, &name, &value, CALL_BOUND).await;
            let written = match put.and_then(|reply| parse_written(&reply, &name)) {
                Ok(written) => written,
                Err(e) => {
                    traffic.lock().unwrap().failures.push(format!("{at}: node{writer} put {name}: {e}"));
                    continue;
                }
            };
            if sent.elapsed() > CALL_BOUND {
                let message = format!("{at}: node{writer} put {name} took {:.1?}", sent.elapsed());
                traffic.lock().unwrap().failures.push(message);
            }
            traffic.lock().unwrap().latest[k] = Some((value.clone(), written.version, sent));
            let read = api.cache_get_reply(reader, &name).await.and_then(|reply| parse_read(&reply, &name));
            match read {
                Ok(read) if read.value == value && read.version == written.version => {}
                Ok(read) => traffic.lock().unwrap().failures.push(format!(
                    "{at}: node{reader} read {name} right after the put of {value} (version {}) via node{writer} \
                     returned: {read:?}",
                    written.version
                )),
                Err(e) => traffic.lock().unwrap().failures.push(format!("{at}: node{reader} get {name}: {e}")),
            }
        }
        rounds.store(round + 1, Ordering::SeqCst);
    }
}

/// One lock acquire/release and one queue produce/consume/ack, each within
/// [`CALL_BOUND`], while Redis is down.
async fn locks_and_queues_work(api: &Api, a: u64, b: u64) {
    let call = async |id: u64, path: &str, body: Value| {
        let started = Instant::now();
        let reply = api.post_with_timeout(id, path, &body, CALL_BOUND).await.unwrap_or_else(|e| {
            panic!("while Redis is down: node{id} POST {path} {body}: {e}");
        });
        assert_eq!(reply.status, 200, "while Redis is down: node{id} POST {path} {body}: {reply}");
        assert!(started.elapsed() <= CALL_BOUND, "while Redis is down: POST {path} took {:.1?}", started.elapsed());
        reply.body
    };
    let lock = json!({"resource": "ro-lock", "owner": "ro-owner", "ttl_ms": 30_000, "wait_ms": 0});
    let granted = call(a, "/locks/acquire", lock).await;
    assert_eq!(granted["granted"], true, "lock acquire while Redis is down: {granted}");
    let released = call(b, "/locks/release", json!({"resource": "ro-lock", "owner": "ro-owner"})).await;
    assert_eq!(released["released"], true, "lock release while Redis is down: {released}");
    call(b, "/queue/produce", json!({"queue": "ro-q", "message": "during the outage"})).await;
    let got = call(a, "/queue/consume", json!({"queue": "ro-q", "consumer": "ro-c", "max": 1})).await;
    let messages = got["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(messages.len(), 1, "consume while Redis is down: {got}");
    assert_eq!(messages[0]["message"], "during the outage", "{got}");
    let acked = call(b, "/queue/ack", json!({"queue": "ro-q", "ids": [messages[0]["id"].clone()]})).await;
    assert_eq!(acked["acked"], 1, "ack while Redis is down: {acked}");
}
