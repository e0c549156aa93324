//! WAL append throughput with 1, 16 and 64 concurrent appenders, 256-byte records.
//!
//! Every append waits for fdatasync, so a lone appender is bound by the disk's sync latency;
//! with more appenders, group commit shares each fdatasync among all queued requests, and the
//! records/s figure shows how well it does.

use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dsync_wal::{Wal, WalOptions};

/// Size of one record, about a small Raft entry.
const RECORD_BYTES: usize = 256;

fn append_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("wal_append");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(5));
    let record = vec![0xA5; RECORD_BYTES];
    for appenders in [1u64, 16, 64] {
        let dir = tempfile::tempdir().expect("tempdir");
        let wal = Wal::open(dir.path(), WalOptions::default()).expect("open wal");
        // One iteration: every appender appends one record and waits for it to be durable.
        group.throughput(Throughput::Elements(appenders));
        group.bench_with_input(BenchmarkId::new("appenders", appenders), &appenders, |b, &appenders| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                thread::scope(|scope| {
                    for _ in 0..appenders {
                        scope.spawn(|| {
                            for _ in 0..iters {
                                wal.append(vec![record.clone()]).expect("append");
                            }
                        });
                    }
                });
                start.elapsed()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, append_throughput);
criterion_main!(benches);
