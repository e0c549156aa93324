//! Cache-directory apply rate through `State::apply` over a `MemStore`, in
//! directory commands per second, over 10 000 keys that all exist (each was
//! put once before timing starts).
//!
//! - `put/uniform`: a put by a random node of 4 to a uniformly random key
//!   (one record read and write, holder-index and dirty-index updates).
//! - `fill_miss/uniform`: a read miss: a fill by a node that does not hold
//!   the uniformly random key yet (downgrading an M or E holder to S, or
//!   joining the sharers). When all 4 nodes hold a key it is invalidated
//!   first, outside the measurement, so every timed fill changes the line.
//! - `mix/zipf`: one put in five, the rest fill misses, keys drawn
//!   log-uniformly (density ~ 1/rank, Zipf-like with s = 1): a few hot keys
//!   see most traffic, so puts keep dropping sharers of hot lines.
//!
//! Every entry also runs lock and queue expiry first, as a replica does
//! (nothing is due here: one empty scan of the queue timer index). Random
//! choices come from an inline xorshift with a fixed seed, so runs are
//! comparable. The in-memory store is a `BTreeMap`, so these numbers are the
//! state machine's own cost; sled adds its own on a real node.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dsync_benches::Rng;
use dsync_statemachine::cache::{Applied, CacheOutcome, NodeId};
use dsync_statemachine::{Command, MemStore, Request, Response, State};

/// Keys in the directory.
const KEYS: usize = 10_000;
/// Nodes of the cluster (ids 1..=NODES).
const NODES: u64 = 4;
/// A realistic small JSON value (~100 bytes).
const VALUE: &str = r#"{"user_id":12345,"name":"c-0042","roles":["reader","writer"],"quota":{"used":17,"max":100}}"#;
/// One put in this many entries of the mix.
const PUT_EVERY: u64 = 5;

/// One replica, and what the bench driver remembers of each key (the
/// current version and which nodes hold it) to propose valid commands, as
/// a node's cache would.
struct Replica {
    state: State,
    store: MemStore,
    index: u64,
    names: Vec<String>,
    versions: Vec<u64>,
    /// Bit `node - 1` set if `node` holds the key.
    held: Vec<u8>,
    rng: Rng,
}

impl Replica {
    /// Every key put once by node 1.
    fn new() -> Replica {
        let names: Vec<String> = (0..KEYS).map(|i| format!("user:{i:05}")).collect();
        let mut replica = Replica {
            state: State::default(),
            store: MemStore::default(),
            index: 0,
            versions: vec![0; KEYS],
            held: vec![0; KEYS],
            names,
            rng: Rng::default(),
        };
        for key in 0..KEYS {
            replica.put(key, 1);
        }
        replica
    }

    fn apply(&mut self, command: Command) -> Applied {
        self.index += 1;
        let output = self.state.apply(&mut self.store, self.index, &Request { time_ms: 0, command });
        match output.response {
            Response::Cache(CacheOutcome::Applied(applied)) => applied,
            other => panic!("not applied: {other:?}"),
        }
    }

    /// Remembers what a command left the line as.
    fn note(&mut self, key: usize, applied: &Applied) {
        self.versions[key] = applied.version;
        self.held[key] = applied.holders.iter().fold(0, |bits, h| bits | 1 << (h.node - 1));
    }

    /// A put of `key` by `node`; returns its apply time.
    fn put(&mut self, key: usize, node: NodeId) -> Duration {
        let command = Command::CachePut { node, key: self.names[key].clone(), value: VALUE.to_string() };
        let start = Instant::now();
        let applied = self.apply(command);
        let took = start.elapsed();
        self.note(key, &applied);
        took
    }

    /// A fill of `key` by a node that does not hold it (invalidating the
    /// key first, untimed, if every node does); returns its apply time.
    fn fill_miss(&mut self, key: usize) -> Duration {
        if self.held[key] == (1 << NODES) - 1 {
            let applied = self.apply(Command::CacheInvalidate { key: self.names[key].clone() });
            self.note(key, &applied);
        }
        let missing: Vec<NodeId> = (1..=NODES).filter(|n| self.held[key] & (1 << (n - 1)) == 0).collect();
        let node = missing[self.rng.below(missing.len() as u64) as usize];
        let command = Command::CacheFill { node, key: self.names[key].clone(), version: self.versions[key] };
        let start = Instant::now();
        let applied = self.apply(command);
        let took = start.elapsed();
        self.note(key, &applied);
        took
    }
}

fn cache_apply(c: &mut Criterion) {
    let mut group = c.benchmark_group("cache_apply");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(1));

    let mut replica = Replica::new();
    group.bench_function("put/uniform", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let key = replica.rng.below(KEYS as u64) as usize;
                    let node = 1 + replica.rng.below(NODES);
                    replica.put(key, node)
                })
                .sum()
        });
    });

    let mut replica = Replica::new();
    group.bench_function("fill_miss/uniform", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let key = replica.rng.below(KEYS as u64) as usize;
                    replica.fill_miss(key)
                })
                .sum()
        });
    });

    let mut replica = Replica::new();
    group.bench_function("mix/zipf", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let key = replica.rng.zipfish(KEYS);
                    if replica.rng.below(PUT_EVERY) == 0 {
                        let node = 1 + replica.rng.below(NODES);
                        replica.put(key, node)
                    } else {
                        replica.fill_miss(key)
                    }
                })
                .sum()
        });
    });
    group.finish();
}

criterion_group!(benches, cache_apply);
criterion_main!(benches);
