//! Rule (API.md, "Distributed queue": durable, at-least-once delivery):
//! while the leader is SIGKILLed and later restarted, no acknowledged
//! message is lost, duplicates are only redeliveries, acked messages stay
//! acked, and the queue drains.
//!
//! Producer tasks send numbered messages `{"p":P,"seq":S}` one at a time
//! through rotating nodes; a message whose produce fails (503, transport
//! error, timeout) is sent again through the next node until acknowledged,
//! so a message may exist twice (two ids) but never zero times once
//! acknowledged. Consumer tasks on different nodes consume with a short
//! lease and ack what they get; a failed ack is retried through the next
//! node, and what stays unacked comes back after its lease. One consumer
//! also "crashes" on every few batches (drops them without acking), so
//! redeliveries certainly happen during the run.
//!
//! Asserted, from what the clients saw:
//! - every id of an acknowledged produce was delivered (and every body of
//!   an acknowledged produce was seen);
//! - an id always carries the same body;
//! - a second delivery of an id is a redelivery: the consume that got it was
//!   sent after the lease of the earlier delivery ran out, and it shows a
//!   higher `delivery_count` than every earlier one;
//! - no id is delivered by a consume sent after an ack that acked it;
//! - every message dropped unacked is delivered again;
//! - no client got an unexpected error (only 503 and transport errors);
//! - the queue drains (ready, in flight, delayed all 0) and its totals add
//!   up: everything produced was delivered and acked, every delivery was a
//!   first one or followed a lease that ran out (consumed_total <= produced
//!   + redelivered), nothing dead-lettered; every node's local stats agree.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::task::JoinSet;

use crate::client::{parse_consumed, parse_produced, Consume, Delivery};
use crate::common::{eventually, Api, Cluster, ClusterOptions};

const QUEUE: &str = "stream";
const PRODUCERS: usize = 3;
const CONSUMERS: usize = 3;

/// Lease of every consume: short, so unacked messages come back in the run.
const VISIBILITY_MS: u64 = 2_000;
/// Long-poll wait of every consume.
const CONSUME_WAIT_MS: u64 = 500;
const CONSUME_MAX: u64 = 10;

/// Consumer 0 drops (never acks) every this many-th non-empty batch.
const DROP_EVERY: usize = 4;

/// High enough that no message is dead-lettered in this run.
const MAX_DELIVERIES: u64 = 1_000;

/// Client-side bound of one produce or ack attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// Client-side bound of one consume attempt beyond its wait.
const CONSUME_SLACK: Duration = Duration::from_secs(3);
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Acknowledged produces before the kill, after it, and after the restart.
const PRODUCED_PER_PHASE: usize = 40;
/// Each producer stops after this many messages (bounds the run).
const SEQ_MAX: u64 = 250;
const PHASE_TIMEOUT: Duration = Duration::from_secs(20);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Slack for the granularity of the leader's millisecond clock.
const CLOCK_SLACK: Duration = Duration::from_millis(20);

/// An acknowledged produce.
#[derive(Debug, Clone)]
struct Produced {
    p: u64,
    seq: u64,
    id: String,
}

/// A message as a consumer got it.
#[derive(Debug, Clone)]
struct Seen {
    delivery: Delivery,
    consumer: usize,
    via: u64,
    /// When the consume that returned it was sent, and when it answered.
    sent: Instant,
    received: Instant,
}

/// An ack that acked every id it named (`acked` equal to their number).
#[derive(Debug, Clone)]
struct Confirmed {
    ids: Vec<String>,
    at: Instant,
}

#[derive(Default)]
struct Run {
    produced: Mutex<Vec<Produced>>,
    seen: Mutex<Vec<Seen>>,
    confirmed: Mutex<Vec<Confirmed>>,
    /// Ids consumer 0 dropped without acking.
    dropped: Mutex<Vec<String>>,
    retries: AtomicU64,
    stop_producing: AtomicBool,
    stop_consuming: AtomicBool,
    violations: Mutex<Vec<String>>,
}

impl Run {
    fn violation(&self, what: String) {
        eprintln!("t30_queues_failover: VIOLATION: {what}");
        self.violations.lock().expect("violations lock").push(what);
    }

    fn produced(&self) -> usize {
        self.produced.lock().expect("produced lock").len()
    }

    fn seen(&self) -> usize {
        self.seen.lock().expect("seen lock").len()
    }
}

#[tokio::test]
async fn acknowledged_messages_survive_leader_failover_at_least_once() {
    let options = ClusterOptions::default().env("MAX_DELIVERIES", MAX_DELIVERIES);
    let mut cluster = Cluster::start("t30_queues_failover", options).await;
    let leader = cluster.wait_for_leader().await;
    let nodes = cluster.running();
    let run = Arc::new(Run::default());
    let started = Instant::now();

    let mut producers = JoinSet::new();
    for p in 0..PRODUCERS {
        producers.spawn(producer(cluster.api().clone(), run.clone(), nodes.clone(), p));
    }
    let mut consumers = JoinSet::new();
    for c in 0..CONSUMERS {
        consumers.spawn(consumer(cluster.api().clone(), run.clone(), nodes.clone(), c));
    }

    wait_progress(&run, PRODUCED_PER_PHASE, 1, "before the kill").await;
    let at_kill = (run.produced(), run.seen());
    cluster.kill(leader);
    let killed_at = Instant::now();
    eprintln!("t30_queues_failover: killed the leader node{leader} at {at_kill:?} (produced, delivered)");
    wait_progress(&run, at_kill.0 + PRODUCED_PER_PHASE, at_kill.1 + 1, "after the leader was killed").await;
    eprintln!("t30_queues_failover: progress again {:.3?} after the kill", killed_at.elapsed());
    cluster.restart(leader).await;
    let at_restart = (run.produced(), run.seen());
    eprintln!("t30_queues_failover: node{leader} restarted at {at_restart:?}");
    wait_progress(&run, at_restart.0 + PRODUCED_PER_PHASE, at_restart.1 + 1, "after the restart").await;

    run.stop_producing.store(true, Ordering::SeqCst);
    while let Some(done) = producers.join_next().await {
        done.expect("a producer task panicked");
    }
    let produced = run.produced.lock().expect("produced lock").clone();
    eprintln!("t30_queues_failover: {} produces acknowledged in {:.1?}", produced.len(), started.elapsed());

    // Consumers go on until every acknowledged message was seen and the
    // queue is empty by a linearizable read.
    let wanted: BTreeSet<String> = produced.iter().map(|p| p.id.clone()).collect();
    let api = cluster.api().clone();
    let drained = eventually("t30_queues_failover: the queue to drain", DRAIN_TIMEOUT, async || {
        let seen: BTreeSet<String> =
            run.seen.lock().expect("seen lock").iter().map(|s| s.delivery.id.clone()).collect();
        let missing = wanted.difference(&seen).count();
        if missing > 0 {
            return Err(format!("{missing} acknowledged messages not delivered yet"));
        }
        let stats = api.queue_stats(nodes[0], QUEUE).await?;
        if (stats.ready, stats.in_flight, stats.delayed) == (0, 0, 0) {
            Ok(stats)
        } else {
            Err(format!("stats: {}", stats.raw))
        }
    })
    .await;
    run.stop_consuming.store(true, Ordering::SeqCst);
    while let Some(done) = consumers.join_next().await {
        done.expect("a consumer task panicked");
    }
    let seen = run.seen.lock().expect("seen lock").clone();
    let confirmed = run.confirmed.lock().expect("confirmed lock").clone();
    eprintln!(
        "t30_queues_failover: drained after {:.1?}: {} deliveries of {} ids, {} retried requests; stats {}",
        started.elapsed(),
        seen.len(),
        seen.iter().map(|s| &s.delivery.id).collect::<BTreeSet<_>>().len(),
        run.retries.load(Ordering::SeqCst),
        drained.raw
    );

    let violations = run.violations.lock().expect("violations lock").clone();
    assert!(violations.is_empty(), "{} unexpected answers:\n  {}", violations.len(), violations.join("\n  "));
    assert_nothing_lost(&produced, &seen);
    assert_duplicates_are_redeliveries(&seen);
    assert_acks_stick(&seen, &confirmed);
    let dropped = run.dropped.lock().expect("dropped lock").clone();
    let not_again: Vec<&String> =
        dropped.iter().filter(|id| seen.iter().filter(|s| &s.delivery.id == *id).count() < 2).collect();
    assert!(
        !dropped.is_empty() && not_again.is_empty(),
        "every message a consumer dropped without acking must be delivered again: dropped {}, not redelivered {:?}",
        dropped.len(),
        not_again
    );

    // Totals, now that nothing moves any more.
    let stats = cluster.queue_stats(nodes[1], QUEUE).await.unwrap_or_else(|e| panic!("{e}"));
    let distinct = seen.iter().map(|s| &s.delivery.id).collect::<BTreeSet<_>>().len() as u64;
    let wrong = [
        ("ready", stats.ready, 0),
        ("in_flight", stats.in_flight, 0),
        ("delayed", stats.delayed, 0),
        ("dead_lettered", stats.dead_lettered, 0),
        ("produced_total (every message produced was delivered)", stats.produced_total, distinct),
        ("acked_total (everything produced was acked)", stats.acked_total, stats.produced_total),
    ]
    .into_iter()
    .filter(|(_, got, expected)| got != expected)
    .map(|(what, got, expected)| format!("{what}: {got}, expected {expected}"))
    .collect::<Vec<_>>();
    assert!(wrong.is_empty(), "queue totals after the drain: {}; stats {}", wrong.join("; "), stats.raw);
    assert!(
        stats.redelivered_total >= dropped.len() as u64,
        "redelivered_total {} is below the {} messages whose lease ran out unacked",
        stats.redelivered_total,
        dropped.len()
    );
    // Every delivery is a message's first or follows a lease that ran out
    // (no nacks here); a lease can also run out just before a late ack, so
    // not every give-back is followed by a delivery.
    assert!(
        seen.len() as u64 <= stats.consumed_total
            && stats.consumed_total <= stats.produced_total + stats.redelivered_total,
        "deliveries the consumers got ({}) <= consumed_total ({}) <= produced_total + redelivered_total ({} + {}) \
         does not hold",
        seen.len(),
        stats.consumed_total,
        stats.produced_total,
        stats.redelivered_total
    );
    cluster.wait_local_stats_equal(QUEUE, &stats, "t30 after the drain").await;
}

/// Waits until `produced` produces were acknowledged and `seen` deliveries
/// arrived.
async fn wait_progress(run: &Run, produced: usize, seen: usize, phase: &str) {
    let what = format!("t30_queues_failover: {produced} produces acknowledged and {seen} deliveries {phase}");
    eventually(what, PHASE_TIMEOUT, async || {
        let (p, s) = (run.produced(), run.seen());
        let stuck = run.violations.lock().expect("violations lock").first().cloned();
        if let Some(violation) = stuck {
            panic!("{violation}");
        }
        if p >= produced && s >= seen {
            Ok(())
        } else {
            Err(format!("{p} produced, {s} delivered"))
        }
    })
    .await;
}

/// Sends `{"p":p,"seq":n}` for n = 0, 1, ..., each until acknowledged.
async fn producer(api: Api, run: Arc<Run>, nodes: Vec<u64>, p: usize) {
    let mut next = p;
    for seq in 0..SEQ_MAX {
        let body = json!({"queue": QUEUE, "message": {"p": p, "seq": seq}});
        loop {
            if run.stop_producing.load(Ordering::SeqCst) {
                return;
            }
            let id = nodes[next % nodes.len()];
            match api.post_with_timeout(id, "/queue/produce", &body, ATTEMPT_TIMEOUT).await {
                Ok(reply) if reply.status == 200 => match parse_produced(&reply, QUEUE, 1) {
                    Ok(ids) => {
                        let produced = Produced { p: p as u64, seq, id: ids[0].clone() };
                        run.produced.lock().expect("produced lock").push(produced);
                        break;
                    }
                    Err(e) => {
                        run.violation(format!("produce {body} via node{id}: {e}"));
                        return;
                    }
                },
                Ok(reply) if reply.status == 503 => {}
                Ok(reply) => {
                    run.violation(format!("produce {body} via node{id}: unexpected answer {reply}"));
                    return;
                }
                Err(_transport) => {}
            }
            run.retries.fetch_add(1, Ordering::SeqCst);
            next += 1;
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        next += 1;
    }
}

/// Consumes and acks until told to stop, moving to the next node on errors.
async fn consumer(api: Api, run: Arc<Run>, nodes: Vec<u64>, c: usize) {
    let mut next = c;
    let mut batches = 0;
    let request = Consume::new(QUEUE, &format!("consumer-{c}"))
        .max(CONSUME_MAX)
        .visibility_ms(VISIBILITY_MS)
        .wait_ms(CONSUME_WAIT_MS);
    while !run.stop_consuming.load(Ordering::SeqCst) {
        let id = nodes[next % nodes.len()];
        let sent = Instant::now();
        let timeout = Duration::from_millis(CONSUME_WAIT_MS) + CONSUME_SLACK;
        let reply = api.post_with_timeout(id, "/queue/consume", &request.body(), timeout).await;
        let received = Instant::now();
        let deliveries = match reply {
            Ok(reply) if reply.status == 200 => match parse_consumed(&reply, &request) {
                Ok(deliveries) => deliveries,
                Err(e) => {
                    run.violation(format!("node{id}: {e}"));
                    return;
                }
            },
            Ok(reply) if reply.status == 503 => {
                retry(&run, &mut next).await;
                continue;
            }
            Ok(reply) => {
                run.violation(format!("{request} via node{id}: unexpected answer {reply}"));
                return;
            }
            Err(_transport) => {
                retry(&run, &mut next).await;
                continue;
            }
        };
        if deliveries.is_empty() {
            continue;
        }
        batches += 1;
        let ids: Vec<String> = deliveries.iter().map(|d| d.id.clone()).collect();
        {
            let mut seen = run.seen.lock().expect("seen lock");
            for delivery in deliveries {
                seen.push(Seen { delivery, consumer: c, via: id, sent, received });
            }
        }
        if c == 0 && batches % DROP_EVERY == 0 {
            // A worker that died holding the batch: its lease runs out.
            run.dropped.lock().expect("dropped lock").extend(ids);
            continue;
        }
        ack(&api, &run, &nodes, &mut next, &ids).await;
    }
}

/// Acks `ids`, retrying through the next node a few times; an ack that
/// keeps failing is left to the lease (the messages come back).
async fn ack(api: &Api, run: &Run, nodes: &[u64], next: &mut usize, ids: &[String]) {
    let body = json!({"queue": QUEUE, "ids": ids});
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(VISIBILITY_MS) * 3 {
        let id = nodes[*next % nodes.len()];
        match api.post_with_timeout(id, "/queue/ack", &body, ATTEMPT_TIMEOUT).await {
            Ok(reply) if reply.status == 200 => {
                match reply.body["acked"].as_u64() {
                    Some(acked) if acked == ids.len() as u64 => {
                        let confirmed = Confirmed { ids: ids.to_vec(), at: Instant::now() };
                        run.confirmed.lock().expect("confirmed lock").push(confirmed);
                    }
                    Some(acked) if acked < ids.len() as u64 => {}
                    _ => run.violation(format!("ack {body} via node{id}: {reply}")),
                }
                return;
            }
            Ok(reply) if reply.status == 503 => {}
            Ok(reply) => {
                run.violation(format!("ack {body} via node{id}: unexpected answer {reply}"));
                return;
            }
            Err(_transport) => {}
        }
        retry(run, next).await;
        if run.stop_consuming.load(Ordering::SeqCst) {
            return;
        }
    }
}

async fn retry(run: &Run, next: &mut usize) {
    run.retries.fetch_add(1, Ordering::SeqCst);
    *next += 1;
    tokio::time::sleep(RETRY_PAUSE).await;
}

/// Every acknowledged produce's id was delivered with its body.
fn assert_nothing_lost(produced: &[Produced], seen: &[Seen]) {
    let mut bodies: BTreeMap<&str, &serde_json::Value> = BTreeMap::new();
    let mut wrong = Vec::new();
    for s in seen {
        let earlier = bodies.insert(s.delivery.id.as_str(), &s.delivery.message);
        if let Some(earlier) = earlier {
            if earlier != &s.delivery.message {
                wrong.push(format!("id {} delivered as {earlier} and as {}", s.delivery.id, s.delivery.message));
            }
        }
    }
    let mut lost = Vec::new();
    for p in produced {
        let expected = json!({"p": p.p, "seq": p.seq});
        match bodies.get(p.id.as_str()) {
            None => lost.push(format!("{expected} (id {}) was acknowledged but never delivered", p.id)),
            Some(body) if **body != expected => {
                wrong.push(format!("{expected} was acknowledged as id {} but that id carries {body}", p.id))
            }
            Some(_) => {}
        }
    }
    assert!(wrong.is_empty(), "{} messages changed (first 10):\n  {}", wrong.len(), first_10(&wrong));
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged messages were lost (first 10):\n  {}",
        lost.len(),
        produced.len(),
        first_10(&lost)
    );
}

/// A second delivery of an id only after the earlier lease ran out, with a
/// higher delivery count.
fn assert_duplicates_are_redeliveries(seen: &[Seen]) {
    let mut by_id: BTreeMap<&str, Vec<&Seen>> = BTreeMap::new();
    for s in seen {
        by_id.entry(s.delivery.id.as_str()).or_default().push(s);
    }
    let lease = Duration::from_millis(VISIBILITY_MS);
    let mut wrong = Vec::new();
    let mut redelivered = 0;
    for (id, deliveries) in &by_id {
        redelivered += deliveries.len() - 1;
        for later in deliveries {
            for earlier in deliveries.iter().filter(|e| e.received < later.sent) {
                let describe = |s: &Seen| {
                    format!(
                        "count {} to consumer-{} via node{} (sent +{:?})",
                        s.delivery.delivery_count,
                        s.consumer,
                        s.via,
                        s.sent.duration_since(deliveries[0].sent)
                    )
                };
                if later.delivery.delivery_count <= earlier.delivery.delivery_count {
                    wrong.push(format!(
                        "{id}: delivered {} after {}: not a higher delivery_count",
                        describe(later),
                        describe(earlier)
                    ));
                }
                if later.received + CLOCK_SLACK < earlier.sent + lease {
                    wrong.push(format!(
                        "{id}: delivered {} after {}: answered {:?} after the earlier consume was sent, within its \
                         lease of {lease:?}",
                        describe(later),
                        describe(earlier),
                        later.received.duration_since(earlier.sent)
                    ));
                }
            }
        }
    }
    eprintln!("t30_queues_failover: {redelivered} redeliveries seen over {} ids", by_id.len());
    assert!(
        wrong.is_empty(),
        "{} duplicate deliveries that are not redeliveries (first 10):\n  {}",
        wrong.len(),
        first_10(&wrong)
    );
}

/// No id is delivered by a consume sent after an ack that acked it.
fn assert_acks_stick(seen: &[Seen], confirmed: &[Confirmed]) {
    let mut acked_at: BTreeMap<&str, Instant> = BTreeMap::new();
    for ack in confirmed {
        for id in &ack.ids {
            let at = acked_at.entry(id.as_str()).or_insert(ack.at);
            *at = (*at).min(ack.at);
        }
    }
    let wrong: Vec<String> = seen
        .iter()
        .filter_map(|s| {
            let at = acked_at.get(s.delivery.id.as_str())?;
            (s.sent > *at).then(|| {
                format!(
                    "{} (count {}) delivered to consumer-{} via node{} by a consume sent {:?} after an ack of it \
                     answered acked",
                    s.delivery.id,
                    s.delivery.delivery_count,
                    s.consumer,
                    s.via,
                    s.sent.duration_since(*at)
                )
            })
        })
        .collect();
    assert!(wrong.is_empty(), "{} acked messages came back (first 10):\n  {}", wrong.len(), first_10(&wrong));
}

fn first_10(lines: &[String]) -> String {
    lines[..lines.len().min(10)].join("\n  ")
}
