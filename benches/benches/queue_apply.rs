//! Queue apply rate through `State::apply` over a `MemStore`, in messages
//! per second.
//!
//! - `produce/single`: one produce entry per message.
//! - `produce/batch=100`: one produce entry per 100 messages (one meta read
//!   and write per entry, two store writes per message).
//! - `consume_ack/batch=N`: a consume entry of N messages, then an ack entry
//!   of those N, over a backlog of about 100 000 ready messages.
//!
//! Every entry also runs expiry first, as a replica does (nothing is due
//! here: one empty scan of the timer index). The in-memory store is a
//! `BTreeMap`, so these numbers are the state machine's own cost; sled adds
//! its own on a real node. Stores are refilled or reset between timed
//! stretches (`iter_custom`), outside the measurement.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dsync_statemachine::queue::{self, NewMessage};
use dsync_statemachine::{Command, MemStore, Request, Response, State};

/// A realistic small JSON body (~100 bytes).
const BODY: &str = r#"{"order_id":12345,"customer":"c-0042","items":[{"sku":"A-1","qty":2},{"sku":"B-7","qty":1}]}"#;
/// Messages the produce benchmarks let pile up before starting over with an
/// empty store, so memory stays bounded.
const PRODUCED_MAX: u64 = 200_000;
/// Ready messages the consume benchmarks keep in the queue.
const BACKLOG: u64 = 100_000;
/// Long enough that no lease runs out during a run.
const VISIBILITY_MS: u64 = 1 << 40;

/// One replica: state, store, and the index of the last entry.
#[derive(Default)]
struct Replica {
    state: State,
    store: MemStore,
    index: u64,
}

impl Replica {
    fn apply(&mut self, request: &Request) -> Response {
        self.index += 1;
        self.state.apply(&mut self.store, self.index, request).response
    }

    fn ready(&self) -> u64 {
        queue::stats(&self.store, "orders").map_or(0, |s| s.ready)
    }

    fn produced(&self) -> u64 {
        queue::stats(&self.store, "orders").map_or(0, |s| s.produced_total)
    }
}

/// An entry at time 0 (nothing ever expires).
fn entry(command: Command) -> Request {
    Request { time_ms: 0, command }
}

fn produce(messages: usize) -> Request {
    let messages = vec![NewMessage { key: Some("c-0042".into()), body: BODY.into() }; messages];
    entry(Command::QueueProduce { queue: "orders".into(), messages, max_deliveries: 5 })
}

fn produce_rate(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue_apply/produce");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    for (name, batch) in [("single", 1usize), ("batch=100", 100)] {
        group.throughput(Throughput::Elements(batch as u64));
        let request = produce(batch);
        let mut replica = Replica::default();
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    if replica.produced() >= PRODUCED_MAX {
                        replica = Replica::default();
                    }
                    let start = Instant::now();
                    let response = replica.apply(&request);
                    elapsed += start.elapsed();
                    drop(response);
                }
                elapsed
            });
        });
    }
    group.finish();
}

fn consume_ack_rate(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue_apply/consume_ack");
    group.sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    for batch in [1u32, 100] {
        group.throughput(Throughput::Elements(u64::from(batch)));
        let mut replica = Replica::default();
        let refill = produce(1000);
        let consume = entry(Command::QueueConsume {
            queue: "orders".into(),
            consumer: "worker-1".into(),
            max: batch,
            visibility_ms: VISIBILITY_MS,
        });
        group.bench_with_input(BenchmarkId::new("batch", batch), &batch, |b, &batch| {
            b.iter_custom(|iters| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    while replica.ready() < BACKLOG {
                        replica.apply(&refill);
                    }
                    let start = Instant::now();
                    let Response::QueueConsumed { messages } = replica.apply(&consume) else { panic!("not a consume") };
                    let ids = messages.into_iter().map(|m| m.id).collect();
                    let acked = replica.apply(&entry(Command::QueueAck { queue: "orders".into(), ids }));
                    elapsed += start.elapsed();
                    assert_eq!(acked, Response::QueueAcked { acked: u64::from(batch) });
                }
                elapsed
            });
        });
    }
    group.finish();
}

criterion_group!(benches, produce_rate, consume_ack_rate);
criterion_main!(benches);
