//! The node-local LRU of cache lines (`dsync_server::cache::local::LocalCache`,
//! on the `lru` crate), in operations per second: what a cache hit costs a
//! node besides HTTP.
//!
//! - `get_hit`: a lookup of a held line (marks it most recently used), keys
//!   drawn log-uniformly (Zipf-like, s = 1) over the full cache.
//! - `insert_evict`: installing a new line into a full cache, which pushes
//!   out the least recently used one (what a fill or a put does at capacity).
//!
//! Capacities 100 (the default `CACHE_CAPACITY`) and 100 000. Keys are
//! pre-built strings and random choices come from an inline xorshift with a
//! fixed seed, so the figures are the LRU's own cost.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dsync_benches::Rng;
use dsync_server::cache::local::{Line, LocalCache};
use dsync_statemachine::cache::Mesi;

fn line(version: u64, value: &Arc<str>) -> Line {
    Line { value: value.clone(), version, state: Mesi::S }
}

fn full_cache(capacity: usize, keys: &[String], value: &Arc<str>) -> LocalCache {
    let mut cache = LocalCache::new(NonZeroUsize::new(capacity).expect("capacity > 0"));
    for (i, key) in keys.iter().take(capacity).enumerate() {
        cache.insert(key.clone(), line(i as u64, value));
    }
    cache
}

fn lru(c: &mut Criterion) {
    let value: Arc<str> = Arc::from(r#"{"user":"u-42","plan":"pro","quota":1000}"#);
    let mut group = c.benchmark_group("cache_lru");
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(20);
    group.throughput(Throughput::Elements(1));
    for capacity in [100usize, 100_000] {
        let keys: Vec<String> = (0..capacity * 2).map(|i| format!("user:{i}")).collect();
        let mut cache = full_cache(capacity, &keys, &value);
        let mut rng = Rng::default();
        group.bench_with_input(BenchmarkId::new("get_hit", capacity), &capacity, |b, &capacity| {
            b.iter(|| {
                let key = &keys[rng.zipfish(capacity)];
                black_box(cache.get(key).map(|l| l.version))
            })
        });
        let mut cache = full_cache(capacity, &keys, &value);
        let mut next = capacity;
        group.bench_with_input(BenchmarkId::new("insert_evict", capacity), &capacity, |b, _| {
            b.iter(|| {
                let key = keys[next % keys.len()].clone();
                next += 1;
                black_box(cache.insert(key, line(next as u64, &value)))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, lru);
criterion_main!(benches);
