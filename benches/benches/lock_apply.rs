//! Lock table apply rate through `State::apply`, in entries per second.
//!
//! - `uncontended/held=N`: acquire + release of an exclusive lock, cycling
//!   over 1000 resources, with N other locks held in the background: the
//!   per-entry cost should barely grow with N (ordered indexes, no scans).
//! - `contended/owners=K`: K owners take turns on one exclusive lock. Each
//!   iteration the holder releases (granting the next in line) and queues
//!   again at the back, which runs the deadlock search over a queue of K-1.
//!
//! Every entry also runs `expire` first, as a replica does.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dsync_statemachine::lock::{AcquireRequest, LockMode};
use dsync_statemachine::{Command, MemStore, Request, State};

/// Resources the uncontended benchmark cycles over.
const CYCLED_RESOURCES: usize = 1000;
/// Long enough that nothing expires during a run.
const LEASE_MS: u64 = 1 << 40;

fn acquire(resource: &str, owner: &str, wait_ms: u64) -> Request {
    let request = AcquireRequest {
        resource: resource.into(),
        owner: owner.into(),
        mode: LockMode::Exclusive,
        ttl_ms: LEASE_MS,
        wait_ms,
    };
    Request { time_ms: 0, command: Command::LockAcquire(request) }
}

fn release(resource: &str, owner: &str) -> Request {
    Request { time_ms: 0, command: Command::LockRelease { resource: resource.into(), owner: owner.into() } }
}

fn uncontended(c: &mut Criterion) {
    let mut group = c.benchmark_group("lock_apply/uncontended");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(2));
    let cycle: Vec<(Request, Request)> = (0..CYCLED_RESOURCES)
        .map(|i| (acquire(&format!("r{i}"), &format!("o{i}"), 0), release(&format!("r{i}"), &format!("o{i}"))))
        .collect();
    for held in [0usize, 10_000, 100_000] {
        let mut state = State::default();
        // Lock commands never touch the store; every entry still checks its
        // (empty) timer index, as a replica does.
        let mut store = MemStore::default();
        let mut index = 0;
        for i in 0..held {
            index += 1;
            state.apply(&mut store, index, &acquire(&format!("background{i}"), &format!("keeper{i}"), 0));
        }
        group.bench_with_input(BenchmarkId::new("held", held), &held, |b, _| {
            let mut turn = 0;
            b.iter(|| {
                let (take, give) = &cycle[turn % CYCLED_RESOURCES];
                turn += 1;
                index += 2;
                state.apply(&mut store, index - 1, take);
                state.apply(&mut store, index, give)
            });
        });
    }
    group.finish();
}

fn contended(c: &mut Criterion) {
    let mut group = c.benchmark_group("lock_apply/contended");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2));
    group.throughput(Throughput::Elements(2));
    for owners in [4usize, 32] {
        let names: Vec<String> = (0..owners).map(|i| format!("o{i}")).collect();
        let takes: Vec<Request> = names.iter().map(|o| acquire("hot", o, LEASE_MS)).collect();
        let gives: Vec<Request> = names.iter().map(|o| release("hot", o)).collect();
        // o0 holds, everyone else waits in order.
        let mut state = State::default();
        // Lock commands never touch the store; every entry still checks its
        // (empty) timer index, as a replica does.
        let mut store = MemStore::default();
        let mut index = 0;
        for take in &takes {
            index += 1;
            state.apply(&mut store, index, take);
        }
        group.bench_with_input(BenchmarkId::new("owners", owners), &owners, |b, &owners| {
            let mut holder = 0;
            b.iter(|| {
                index += 2;
                let granted = state.apply(&mut store, index - 1, &gives[holder]);
                let queued = state.apply(&mut store, index, &takes[holder]);
                holder = (holder + 1) % owners;
                (granted, queued)
            });
        });
        assert_eq!(
            state.locks.view("hot").map(|v| v.waiters.len()),
            Some(owners - 1),
            "still one holder, the rest queued"
        );
    }
    group.finish();
}

criterion_group!(benches, uncontended, contended);
criterion_main!(benches);
