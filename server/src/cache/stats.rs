//! The cache's metric families: this node's own counts (its LRU's hits,
//! misses, evictions and MESI transitions, the write-backs and peer reads it
//! performed, its backing-memory calls). `/cache/state` shows them as JSON
//! and `/metrics` in both formats, from the same counters.

use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use serde_json::{json, Map, Value};

use crate::metrics::{latency_buckets, registered};

/// Counters of one node's cache, registered under `dsync_cache_*`.
pub struct CacheMetrics {
    /// Gets answered from this node's own line.
    pub hits: IntCounter,
    /// Gets that had to fetch the line (peer, directory or backing memory).
    pub misses: IntCounter,
    /// Lines this node's LRU pushed out to make room.
    pub evictions: IntCounter,
    /// Dirty values this node wrote back to the backing memory.
    pub writebacks: IntCounter,
    /// Copies on other nodes that writes through this node invalidated.
    pub invalidations_sent: IntCounter,
    /// Copies this node dropped because of a write elsewhere.
    pub invalidations_received: IntCounter,
    /// Changes of this node's lines, by from/to MESI state (`I` = absent).
    pub transitions: IntCounterVec,
    /// Lines read from another node (`/cache/fetch`).
    pub peer_fetches: IntCounter,
    /// Values read from the backing memory.
    pub backing_reads: IntCounter,
    /// Failed backing-memory calls (Redis down or slow).
    pub backing_errors: IntCounter,
    /// Backing-memory call latency by operation.
    pub backing_latency: HistogramVec,
    /// Events published on the Redis channel.
    pub events_published: IntCounter,
    /// Events dropped because Redis stayed away longer than the buffer lasts.
    pub events_dropped: IntCounter,
    /// Lines in this node's LRU.
    pub lines: IntGauge,
    /// hits / (hits + misses), refreshed at scrape time.
    pub hit_ratio: Gauge,
}

impl CacheMetrics {
    /// Creates the families and registers them in `registry`.
    pub fn register(registry: &Registry) -> prometheus::Result<CacheMetrics> {
        let r = registry;
        let counter = |name: &str, help: &str| registered(r, IntCounter::new(format!("cache_{name}"), help)?);
        Ok(CacheMetrics {
            hits: counter("hits_total", "Gets answered from this node's own line")?,
            misses: counter("misses_total", "Gets that fetched the line from a peer, the directory or backing memory")?,
            evictions: counter("evictions_total", "Lines the LRU evicted")?,
            writebacks: counter("writebacks_total", "Dirty values this node wrote back to backing memory")?,
            invalidations_sent: counter(
                "invalidations_sent_total",
                "Copies on other nodes invalidated by writes through this node",
            )?,
            invalidations_received: counter(
                "invalidations_received_total",
                "Copies this node dropped because of writes elsewhere",
            )?,
            transitions: registered(
                r,
                IntCounterVec::new(
                    Opts::new("cache_transitions_total", "MESI transitions of this node's lines"),
                    &["from", "to"],
                )?,
            )?,
            peer_fetches: counter("peer_fetches_total", "Lines read from another node")?,
            backing_reads: counter("backing_reads_total", "Values read from the backing memory")?,
            backing_errors: counter("backing_errors_total", "Failed backing-memory calls")?,
            backing_latency: registered(
                r,
                HistogramVec::new(
                    HistogramOpts::new("cache_backing_seconds", "Backing-memory call latency by operation")
                        .buckets(latency_buckets()?),
                    &["op"],
                )?,
            )?,
            events_published: counter("events_published_total", "Events published on the Redis channel")?,
            events_dropped: counter("events_dropped_total", "Events not published: Redis was away too long")?,
            lines: registered(r, IntGauge::new("cache_lines", "Lines in this node's LRU")?)?,
            hit_ratio: registered(r, Gauge::new("cache_hit_ratio", "hits / (hits + misses) on this node")?)?,
        })
    }

    /// Counts one change of a local line (`None` = I).
    pub fn transition(&self, from: Option<&str>, to: Option<&str>) {
        if from != to {
            self.transitions.with_label_values(&[from.unwrap_or("I"), to.unwrap_or("I")]).inc();
        }
    }

    /// Records a backing-memory call of `op` that took `took`.
    pub fn backing_call(&self, op: &str, took: Duration, ok: bool) {
        self.backing_latency.with_label_values(&[op]).observe(took.as_secs_f64());
        if !ok {
            self.backing_errors.inc();
        }
    }

    /// hits / (hits + misses), 0 before any get.
    pub fn refresh_hit_ratio(&self) -> f64 {
        let (hits, misses) = (self.hits.get(), self.misses.get());
        let ratio = if hits + misses == 0 { 0.0 } else { hits as f64 / (hits + misses) as f64 };
        self.hit_ratio.set(ratio);
        ratio
    }

    /// The `metrics` object of `/cache/state`.
    pub fn json(&self) -> Value {
        let mut transitions = Map::new();
        for family in self.transitions.collect() {
            for metric in family.get_metric() {
                let label = |name: &str| {
                    metric.get_label().iter().find(|l| l.name() == name).map_or("?", |l| l.value()).to_string()
                };
                transitions.insert(format!("{}->{}", label("from"), label("to")), json!(metric.counter.value() as u64));
            }
        }
        let latency = self.backing_latency.with_label_values(&["read"]);
        json!({
            "hits": self.hits.get(),
            "misses": self.misses.get(),
            "hit_ratio": self.refresh_hit_ratio(),
            "evictions": self.evictions.get(),
            "writebacks": self.writebacks.get(),
            "invalidations": self.invalidations_received.get(),
            "invalidations_sent": self.invalidations_sent.get(),
            "peer_fetches": self.peer_fetches.get(),
            "backing_reads": self.backing_reads.get(),
            "backing_errors": self.backing_errors.get(),
            "backing_read_ms_avg": mean_ms(latency.get_sample_sum(), latency.get_sample_count()),
            "events_published": self.events_published.get(),
            "events_dropped": self.events_dropped.get(),
            "transitions": transitions,
        })
    }
}

fn mean_ms(sum_seconds: f64, count: u64) -> f64 {
    if count == 0 {
        0.0
    } else {
        sum_seconds * 1000.0 / count as f64
    }
}
