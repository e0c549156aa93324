//! Rule (API.md, "Coherent cache (MESI)"): once a put has returned, no get
//! on any node returns an older value; a node that cannot confirm it is still
//! in contact with the leader stops answering from its cache.
//!
//! One writer task per key puts increasing integers, each put through the
//! next node in turn; one reader task per node reads the keys in turn. Every
//! put's version and return instant and every get's start instant are
//! recorded. Afterwards, for every get: its version is at least the highest
//! version of that key whose put had returned before the get began, and its
//! value is the value put with that version.
//!
//! Phases: all nodes up; a follower SIGSTOPped while holding copies of
//! every key (puts through the two others must still finish within
//! [`PUT_BOUND`]), then SIGCONTed and read from at once; the same with the
//! leader (puts may fail during the election, and must succeed after it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::client::{parse_read, parse_written};
use crate::common::api::REQUEST_TIMEOUT;
use crate::common::{eventually, Api, Cluster, ClusterOptions};

/// Keys written and read concurrently.
const KEYS: usize = 3;

/// Longest a put through a running node may take while every other node is
/// up or only a follower is paused.
const PUT_BOUND: Duration = Duration::from_secs(5);

/// Traffic with every node up.
const ALL_UP: Duration = Duration::from_secs(4);

/// How long a node stays paused (after the phase's puts succeed).
const PAUSED: Duration = Duration::from_secs(3);

/// Traffic after a paused node is resumed.
const AFTER_RESUME: Duration = Duration::from_secs(3);

/// Successful reads a resumed node must serve within [`AFTER_RESUME`].
const RESUMED_READS_MIN: usize = 3;

fn key(index: usize) -> String {
    format!("nsr-{index}")
}

/// What the client tasks do right now; changed by the test through a watch.
#[derive(Debug, Clone)]
struct Plan {
    phase: &'static str,
    /// Nodes the writers put through, in turn; empty: writers wait.
    writers: Vec<u64>,
    /// Nodes whose reader task reads.
    readers: Vec<u64>,
    /// Nodes whose failed requests are tolerated (a resumed node, an
    /// election); a put that failed there may or may not have happened.
    tolerated: BTreeSet<u64>,
    stop: bool,
}

#[derive(Debug, Clone)]
struct Put {
    key: usize,
    node: u64,
    value: u64,
    version: u64,
    returned: Instant,
    phase: &'static str,
}

#[derive(Debug, Clone)]
struct Get {
    key: usize,
    node: u64,
    started: Instant,
    value: u64,
    version: u64,
    hit: bool,
    state: String,
    phase: &'static str,
}

/// Everything the tasks observed.
#[derive(Default)]
struct Record {
    puts: Vec<Put>,
    gets: Vec<Get>,
    /// Failures that are not tolerated: the test fails with them.
    failures: Vec<String>,
    /// Failures on tolerated nodes, for the summary.
    tolerated: Vec<String>,
    /// Requests in flight per node.
    in_flight: BTreeMap<u64, usize>,
    /// Puts in flight (any node).
    puts_in_flight: usize,
}

type Shared = Arc<Mutex<Record>>;

fn lock(record: &Shared) -> std::sync::MutexGuard<'_, Record> {
    record.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[tokio::test]
async fn no_get_returns_a_value_older_than_a_returned_put_even_across_sigstop() {
    let mut cluster = Cluster::start("t20_cache_no_stale_read", ClusterOptions::default()).await;
    let api = cluster.api().clone();
    let record: Shared = Arc::default();
    let first = cluster.nodes_by_role().await;

    // Every key exists before the readers start.
    for k in 0..KEYS {
        let sent = api.cache_put(first.a, &key(k), &json!(0)).await.unwrap_or_else(|e| panic!("first put: {e}"));
        let put =
            Put { key: k, node: first.a, value: 0, version: sent.version, returned: Instant::now(), phase: "setup" };
        lock(&record).puts.push(put);
    }
    let all = vec![1, 2, 3];
    let (plan_tx, plan_rx) = watch::channel(Plan {
        phase: "all nodes up",
        writers: all.clone(),
        readers: all.clone(),
        tolerated: BTreeSet::new(),
        stop: false,
    });
    let mut tasks: Vec<JoinHandle<()>> = Vec::new();
    for k in 0..KEYS {
        tasks.push(tokio::spawn(writer(api.clone(), k, plan_rx.clone(), record.clone())));
    }
    for &node in &all {
        tasks.push(tokio::spawn(reader(api.clone(), node, plan_rx.clone(), record.clone())));
    }
    tokio::time::sleep(ALL_UP).await;

    // A follower paused while it holds a copy (M, E or S) of every key.
    let follower = first.b;
    let others: Vec<u64> = all.iter().copied().filter(|&id| id != follower).collect();
    let phase = "follower paused";
    prime_and_pause(&mut cluster, &api, &record, &plan_tx, follower, phase, false).await;
    plan_tx.send_modify(|plan| {
        plan.writers = others.clone();
        plan.readers = others.clone();
    });
    let paused_at = Instant::now();
    wait_puts_in_phase(&record, phase, paused_at, "puts through the running nodes while a follower is paused").await;
    tokio::time::sleep(PAUSED).await;
    cluster.resume(follower);
    let resumed_at = Instant::now();
    plan_tx.send_modify(|plan| {
        plan.phase = "follower resumed";
        plan.writers = all.clone();
        plan.readers = all.clone();
        plan.tolerated = BTreeSet::from([follower]);
    });
    read_each_key(&api, &record, follower, "follower resumed").await;
    tokio::time::sleep(AFTER_RESUME).await;
    check_resumed_node_serves(&record, follower, resumed_at);

    // The leader paused while it holds a copy (M, E or S) of every key.
    plan_tx.send_modify(|plan| plan.tolerated.clear());
    let leader = cluster.wait_for_leader().await;
    let others: Vec<u64> = all.iter().copied().filter(|&id| id != leader).collect();
    let phase = "leader paused";
    prime_and_pause(&mut cluster, &api, &record, &plan_tx, leader, phase, true).await;
    plan_tx.send_modify(|plan| {
        plan.writers = others.clone();
        plan.readers = others.clone();
        plan.tolerated = others.iter().copied().collect();
    });
    let paused_at = Instant::now();
    let successor = cluster.wait_for_leader_among(&others, Some(leader)).await;
    wait_puts_in_phase(
        &record,
        phase,
        paused_at,
        "puts through the running nodes after the paused leader's successor was elected",
    )
    .await;
    tokio::time::sleep(PAUSED).await;
    cluster.resume(leader);
    let resumed_at = Instant::now();
    plan_tx.send_modify(|plan| {
        plan.phase = "old leader resumed";
        plan.writers = all.clone();
        plan.readers = all.clone();
        plan.tolerated = BTreeSet::from([leader]);
    });
    read_each_key(&api, &record, leader, "old leader resumed").await;
    tokio::time::sleep(AFTER_RESUME).await;
    check_resumed_node_serves(&record, leader, resumed_at);

    plan_tx.send_modify(|plan| plan.stop = true);
    for task in tasks {
        let bound = PUT_BOUND + REQUEST_TIMEOUT;
        tokio::time::timeout(bound, task)
            .await
            .unwrap_or_else(|_| panic!("a client task did not stop within {bound:?}"))
            .unwrap_or_else(|e| panic!("a client task panicked: {e}"));
    }
    let record = lock(&record);
    summarize(&record, follower, leader, successor);
    // Both verdicts are reported together: a failed request says nothing
    // about staleness, and the reader wants to know about both.
    let stale = stale_reads(&record);
    let mut problems = Vec::new();
    if !stale.is_empty() {
        problems.push(format!(
            "{} of {} gets returned an older value than a put that had already returned (first 10):\n  {}",
            stale.len(),
            record.gets.len(),
            stale.iter().take(10).cloned().collect::<Vec<_>>().join("\n  ")
        ));
    }
    if !record.failures.is_empty() {
        let mut by_phase: BTreeMap<&str, usize> = BTreeMap::new();
        let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
        for failure in &record.failures {
            let phase = failure.split('"').nth(1).unwrap_or("?");
            *by_phase.entry(phase).or_default() += 1;
            *by_kind.entry(failure_kind(failure)).or_default() += 1;
        }
        problems.push(format!(
            "{} requests to running, unpaused nodes failed (per phase: {by_phase:?}; per kind: {by_kind:#?}; \
             first 10):\n  {}",
            record.failures.len(),
            record.failures.iter().take(10).cloned().collect::<Vec<_>>().join("\n  ")
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Stops the writers and `node`'s reader, waits until nothing is in flight
/// to `node` and no put is in flight, reads every key on `node` (so it holds
/// a copy of each), checks it does, and SIGSTOPs it. The tasks' plan then
/// names `phase`; the writers stay stopped until the caller resumes them.
/// With `tolerate_others` (`node` is the leader), failures on the other
/// nodes are tolerated from just before the pause.
async fn prime_and_pause(
    cluster: &mut Cluster,
    api: &Api,
    record: &Shared,
    plan_tx: &watch::Sender<Plan>,
    node: u64,
    phase: &'static str,
    tolerate_others: bool,
) {
    plan_tx.send_modify(|plan| {
        plan.phase = phase;
        plan.writers.clear();
        plan.readers.retain(|&id| id != node);
    });
    let what = format!("the puts and node{node}'s reads in flight to finish before pausing it");
    eventually(what, PUT_BOUND + REQUEST_TIMEOUT, async || {
        let record = lock(record);
        let to_node = record.in_flight.get(&node).copied().unwrap_or(0);
        match (record.puts_in_flight, to_node) {
            (0, 0) => Ok(()),
            (puts, to_node) => Err(format!("{puts} puts in flight, {to_node} requests to node{node}")),
        }
    })
    .await;
    read_each_key(api, record, node, phase).await;
    if tolerate_others {
        // Requests in flight through the others at the pause may be
        // forwarded to the paused leader: they may fail until the election.
        plan_tx.send_modify(|plan| plan.tolerated = [1, 2, 3].into_iter().filter(|&id| id != node).collect());
    }
    for k in 0..KEYS {
        let line = api.cache_line(node, &key(k)).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(
            // M too: the last put may have gone through this very node.
            line.as_ref().is_some_and(|line| ["M", "E", "S"].contains(&line.state.as_str())),
            "node{node} just read {} with no write since, so it holds a copy; /cache/state shows {line:?}",
            key(k)
        );
    }
    cluster.pause(node);
}

/// Reads every key once on `node` from the test's own task, recorded like
/// the readers' reads (errors are tolerated: `node` may be just resumed).
async fn read_each_key(api: &Api, record: &Shared, node: u64, phase: &'static str) {
    for k in 0..KEYS {
        let started = Instant::now();
        let reply = api.cache_get_reply(node, &key(k)).await;
        note_get(record, k, node, started, reply, phase, true);
    }
}

/// Waits until each key has a put that was sent in `phase` and returned.
async fn wait_puts_in_phase(record: &Shared, phase: &'static str, since: Instant, what: &str) {
    eventually(what, Duration::from_secs(30), async || {
        let record = lock(record);
        let missing: Vec<String> = (0..KEYS)
            .filter(|&k| !record.puts.iter().any(|p| p.key == k && p.phase == phase && p.returned > since))
            .map(key)
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("no put of {missing:?} returned yet; failures so far: {:?}", record.failures.last()))
        }
    })
    .await;
}

/// A resumed node serves reads again: enough successful reads that started
/// after its resume.
fn check_resumed_node_serves(record: &Shared, node: u64, resumed_at: Instant) {
    let record = lock(record);
    let served = record.gets.iter().filter(|g| g.node == node && g.started > resumed_at).count();
    let tolerated: Vec<&String> = record.tolerated.iter().filter(|t| t.starts_with(&format!("node{node} "))).collect();
    assert!(
        served >= RESUMED_READS_MIN,
        "node{node} served only {served} successful reads in the {AFTER_RESUME:?} after its SIGCONT \
         (at least {RESUMED_READS_MIN} expected); its failures: {:?}",
        &tolerated[tolerated.len().saturating_sub(5)..]
    );
}

async fn writer(api: Api, k: usize, mut plan_rx: watch::Receiver<Plan>, record: Shared) {
    let name = key(k);
    let mut value = 0;
    let mut turn = k;
    loop {
        let plan = plan_rx.borrow_and_update().clone();
        if plan.stop {
            return;
        }
        if plan.writers.is_empty() {
            if plan_rx.changed().await.is_err() {
                return;
            }
            continue;
        }
        let node = plan.writers[turn % plan.writers.len()];
        turn += 1;
        value += 1;
        {
            let mut record = lock(&record);
            *record.in_flight.entry(node).or_default() += 1;
            record.puts_in_flight += 1;
        }
        let tolerated = plan.tolerated.contains(&node);
        let timeout = if tolerated { REQUEST_TIMEOUT } else { PUT_BOUND };
        let sent = Instant::now();
        let reply = api.cache_put_reply(node, &name, &json!(value), timeout).await;
        let returned = Instant::now();
        let mut record = lock(&record);
        *record.in_flight.entry(node).or_default() -= 1;
        record.puts_in_flight -= 1;
        let outcome = reply.and_then(|reply| parse_written(&reply, &name));
        let took = returned - sent;
        match outcome {
            Ok(written) if tolerated || took <= PUT_BOUND => {
                let phase = plan.phase;
                record.puts.push(Put { key: k, node, value, version: written.version, returned, phase });
            }
            Ok(_) => record.failures.push(format!(
                "node{node} put {name}={value} in phase {:?} took {took:.1?}, above {PUT_BOUND:?}",
                plan.phase
            )),
            Err(e) if tolerated => record.tolerated.push(format!("node{node} put {name}={value}: {e}")),
            Err(e) => record
                .failures
                .push(format!("phase {:?}: node{node} put {name}={value} after {took:.1?}: {e}", plan.phase)),
        }
    }
}

async fn reader(api: Api, node: u64, mut plan_rx: watch::Receiver<Plan>, record: Shared) {
    let mut turn = node as usize;
    loop {
        let plan = plan_rx.borrow_and_update().clone();
        if plan.stop {
            return;
        }
        if !plan.readers.contains(&node) {
            if plan_rx.changed().await.is_err() {
                return;
            }
            continue;
        }
        let k = turn % KEYS;
        turn += 1;
        *lock(&record).in_flight.entry(node).or_default() += 1;
        let started = Instant::now();
        let reply = api.cache_get_reply(node, &key(k)).await;
        *lock(&record).in_flight.entry(node).or_default() -= 1;
        note_get(&record, k, node, started, reply, plan.phase, plan.tolerated.contains(&node));
    }
}

fn note_get(
    record: &Shared,
    k: usize,
    node: u64,
    started: Instant,
    reply: Result<crate::common::Reply, String>,
    phase: &'static str,
    tolerated: bool,
) {
    let name = key(k);
    let outcome = reply.and_then(|reply| {
        let read = parse_read(&reply, &name)?;
        let value =
            read.value.as_u64().ok_or_else(|| format!("value {} is not an integer a writer put", read.value))?;
        Ok(Get { key: k, node, started, value, version: read.version, hit: read.hit, state: read.state, phase })
    });
    let mut record = lock(record);
    match outcome {
        Ok(get) => record.gets.push(get),
        Err(e) if tolerated => record.tolerated.push(format!("node{node} get {name}: {e}")),
        Err(e) => record.failures.push(format!("phase {phase:?}: node{node} get {name}: {e}")),
    }
}

/// The rule itself (see the module doc): every get that broke it, described.
fn stale_reads(record: &Record) -> Vec<String> {
    let mut value_of: BTreeMap<(usize, u64), u64> = BTreeMap::new();
    let mut conflicts = Vec::new();
    for put in &record.puts {
        if let Some(previous) = value_of.insert((put.key, put.version), put.value) {
            conflicts.push(format!("{} version {}: values {previous} and {}", key(put.key), put.version, put.value));
        }
    }
    assert!(conflicts.is_empty(), "two puts of a key were answered with the same version: {conflicts:?}");
    let mut by_key: Vec<Vec<&Put>> = vec![Vec::new(); KEYS];
    for put in &record.puts {
        by_key[put.key].push(put);
    }
    for puts in &mut by_key {
        puts.sort_by_key(|put| put.returned);
    }
    let origin = record.puts.iter().map(|p| p.returned).min().expect("the setup puts are recorded");
    let at = |instant: Instant| format!("t={:.3}s", instant.saturating_duration_since(origin).as_secs_f64());
    let mut stale = Vec::new();
    for get in &record.gets {
        let newest = by_key[get.key].iter().filter(|put| put.returned < get.started).max_by_key(|put| put.version);
        let Some(newest) = newest else {
            continue;
        };
        let described = format!(
            "node{} get of {} started {} in phase {:?} returned value {} version {} (hit {}, state {})",
            get.node,
            key(get.key),
            at(get.started),
            get.phase,
            get.value,
            get.version,
            get.hit,
            get.state
        );
        if get.version < newest.version {
            stale.push(format!(
                "{described}, but the put of value {} (version {}) via node{} had returned at {}",
                newest.value,
                newest.version,
                newest.node,
                at(newest.returned)
            ));
        } else if let Some(&value) = value_of.get(&(get.key, get.version)) {
            if value != get.value {
                stale.push(format!("{described}, but version {} was put with value {value}", get.version));
            }
        }
    }
    stale
}

fn summarize(record: &Record, follower: u64, leader: u64, successor: u64) {
    let mut phases: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for put in &record.puts {
        phases.entry(put.phase).or_default().0 += 1;
    }
    let mut not_kept = 0;
    for get in &record.gets {
        let entry = phases.entry(get.phase).or_default();
        entry.1 += 1;
        entry.2 += usize::from(get.hit);
        not_kept += usize::from(get.state == "I");
    }
    eprintln!(
        "no-stale-read: paused follower node{follower}, paused leader node{leader} (successor node{successor}); \
         per phase (puts, gets, hits): {phases:?}; {not_kept} gets answered state I (line not kept); \
         {} tolerated failures, {} failures",
        record.tolerated.len(),
        record.failures.len()
    );
}

/// A failure without its node, key, values and times: what went wrong.
fn failure_kind(failure: &str) -> String {
    let verb = if failure.contains(" get ") { "get" } else { "put" };
    let what = failure.find("HTTP ").or_else(|| failure.find(" took ")).map_or(failure, |at| &failure[at..]);
    let what: String = what.chars().map(|c| if c.is_ascii_digit() { '#' } else { c }).take(140).collect();
    format!("{verb}: {what}")
}
