//! Prometheus metrics of a node, served by `/metrics` as Prometheus text or
//! JSON (the same families either way).
//!
//! Counters and histograms are updated where things happen (the HTTP layer,
//! the leader watcher); Raft gauges are read from openraft's metrics at
//! scrape time, so they are never stale. `process_*` families come from the
//! prometheus crate's process collector in its default registry.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use dsync_engine::{node_name, Node, Role, Status};
use dsync_statemachine::queue::{self, QueueStats};
use dsync_statemachine::Event;
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use serde_json::{json, Map, Value};

use crate::cache::stats::CacheMetrics;

/// Every metric family of dsync (names get the `dsync_` prefix).
///
/// Two kinds of counters: those counted from applied events (lock grants,
/// expiries, ...) are cluster totals as this node applied them, identical on
/// every node like the Raft gauges; those counted from requests (HTTP, lock
/// waits, acquire latency) are this node's own.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_latency: HistogramVec,
    leader_changes: IntCounter,
    raft_term: IntGauge,
    raft_commit_index: IntGauge,
    raft_applied_index: IntGauge,
    raft_last_log_index: IntGauge,
    raft_snapshot_index: IntGauge,
    raft_is_leader: IntGauge,
    raft_replication_lag: IntGaugeVec,
    lock_acquire_latency: HistogramVec,
    lock_waits: IntCounter,
    lock_grants: IntCounter,
    lock_timeouts: IntCounter,
    lock_deadlocks: IntCounter,
    lock_expiries: IntCounter,
    locks_held: IntGauge,
    queue_produce_latency: Histogram,
    queue_consume_latency: Histogram,
    /// This node's cache counters (also shown by `/cache/state`).
    pub cache: CacheMetrics,
}

/// Latency buckets from 0.5 ms to ~16 s, doubling.
pub fn latency_buckets() -> prometheus::Result<Vec<f64>> {
    prometheus::exponential_buckets(0.0005, 2.0, 16)
}

/// Registers `collector` in `registry` and hands it back.
pub fn registered<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    collector: C,
) -> prometheus::Result<C> {
    registry.register(Box::new(collector.clone()))?;
    Ok(collector)
}

impl Metrics {
    /// Creates and registers every family.
    pub fn new() -> prometheus::Result<Metrics> {
        let registry = Registry::new_custom(Some("dsync".into()), None)?;
        let r = &registry;
        let gauge = |name: &str, help: &str| registered(r, IntGauge::new(name, help)?);
        let counter = |name: &str, help: &str| registered(r, IntCounter::new(name, help)?);
        Ok(Metrics {
            http_requests: registered(
                r,
                IntCounterVec::new(
                    Opts::new("http_requests_total", "HTTP requests by route, method and status"),
                    &["route", "method", "status"],
                )?,
            )?,
            http_latency: registered(
                r,
                HistogramVec::new(
                    HistogramOpts::new("http_request_duration_seconds", "HTTP request latency by route")
                        .buckets(latency_buckets()?),
                    &["route"],
                )?,
            )?,
            leader_changes: counter("raft_leader_changes_total", "Times this node saw a new leader")?,
            raft_replication_lag: registered(
                r,
                IntGaugeVec::new(
                    Opts::new("raft_replication_lag_entries", "Entries the leader has that a follower lacks"),
                    &["peer"],
                )?,
            )?,
            raft_term: gauge("raft_term", "Current Raft term")?,
            raft_commit_index: gauge("raft_commit_index", "Highest log index known committed")?,
            raft_applied_index: gauge("raft_applied_index", "Highest log index applied")?,
            raft_last_log_index: gauge("raft_last_log_index", "Highest log index stored")?,
            raft_snapshot_index: gauge("raft_snapshot_index", "Log index covered by the latest snapshot")?,
            raft_is_leader: gauge("raft_is_leader", "1 if this node is the leader")?,
            lock_acquire_latency: registered(
                r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "lock_acquire_duration_seconds",
                        "Lock acquire latency through this node, waits included, by outcome",
                    )
                    .buckets(latency_buckets()?),
                    &["outcome"],
                )?,
            )?,
            lock_waits: counter("lock_waits_total", "Acquires through this node that had to wait")?,
            lock_grants: counter("lock_grants_total", "Lock grants (cluster total)")?,
            lock_timeouts: counter("lock_timeouts_total", "Lock waits that timed out (cluster total)")?,
            lock_deadlocks: counter("lock_deadlocks_total", "Deadlock victims aborted (cluster total)")?,
            lock_expiries: counter("lock_expiries_total", "Leases that expired (cluster total)")?,
            locks_held: gauge("locks_held", "Lock holds (resource, owner) right now")?,
            queue_produce_latency: registered(
                r,
                Histogram::with_opts(
                    HistogramOpts::new("queue_produce_duration_seconds", "Produce latency through this node")
                        .buckets(latency_buckets()?),
                )?,
            )?,
            queue_consume_latency: registered(
                r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "queue_consume_duration_seconds",
                        "Latency of consumes through this node that returned messages, long-poll waits included",
                    )
                    .buckets(latency_buckets()?),
                )?,
            )?,
            cache: CacheMetrics::register(r)?,
            registry,
        })
    }

    /// Records one acquire through this node and how it ended.
    pub fn lock_acquired(&self, outcome: &str, took: Duration) {
        self.lock_acquire_latency.with_label_values(&[outcome]).observe(took.as_secs_f64());
    }

    /// Counts an acquire through this node that had to wait.
    pub fn lock_queued(&self) {
        self.lock_waits.inc();
    }

    /// Records one produce through this node.
    pub fn queue_produced(&self, took: Duration) {
        self.queue_produce_latency.observe(took.as_secs_f64());
    }

    /// Records one consume through this node that returned messages.
    pub fn queue_consumed(&self, took: Duration) {
        self.queue_consume_latency.observe(took.as_secs_f64());
    }

    /// Counts what an applied event says happened in the cluster.
    pub fn observe_event(&self, event: &Event) {
        match event {
            Event::LockGranted { .. } => self.lock_grants.inc(),
            Event::LockWaitTimedOut { .. } => self.lock_timeouts.inc(),
            Event::LockDeadlock { .. } => self.lock_deadlocks.inc(),
            Event::LockExpired { .. } => self.lock_expiries.inc(),
            _ => {}
        }
    }

    /// Counts a leader change seen by this node.
    pub fn leader_changed(&self) {
        self.leader_changes.inc();
    }

    /// Refreshes the Raft gauges from `node` (called at scrape time).
    fn refresh(&self, node: &Node, status: &Status) {
        let gauge = |g: &IntGauge, v: u64| g.set(i64::try_from(v).unwrap_or(i64::MAX));
        gauge(&self.raft_term, status.term);
        gauge(&self.raft_commit_index, status.commit_index);
        gauge(&self.raft_applied_index, status.applied_index);
        gauge(&self.raft_last_log_index, status.last_log_index);
        gauge(&self.raft_snapshot_index, status.snapshot_index.unwrap_or(0));
        self.raft_is_leader.set(i64::from(status.role == Role::Leader));
        self.cache.refresh_hit_ratio();
        gauge(&self.locks_held, node.read_state(|s, _| s.locks.hold_count()) as u64);
        self.raft_replication_lag.reset();
        let metrics = node.metrics().borrow().clone();
        for (peer, matched) in metrics.replication.iter().flatten() {
            let lag = status.last_log_index.saturating_sub(matched.map_or(0, |m| m.index));
            gauge(&self.raft_replication_lag.with_label_values(&[&node_name(*peer)]), lag);
        }
    }

    fn gather(&self, node: &Node, status: &Status) -> Vec<MetricFamily> {
        self.refresh(node, status);
        let mut families = self.registry.gather();
        families.extend(queue_families(&node.read_state(|_, store| queue::all_stats(store))));
        families.extend(prometheus::gather());
        families
    }

    /// The Prometheus text exposition of every family.
    pub fn prometheus_text(&self, node: &Node) -> String {
        let families = self.gather(node, &node.status());
        let mut text = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&families, &mut text) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8_lossy(&text).into_owned()
    }

    /// The JSON form: this node's Raft status plus every family by name.
    pub fn json(&self, node: &Node) -> Value {
        let status = node.status();
        let families: Map<String, Value> =
            self.gather(node, &status).iter().map(|f| (f.name().to_string(), family_json(f))).collect();
        json!({
            "node_id": status.node_id,
            "raft": {
                "role": status.role,
                "term": status.term,
                "leader": status.leader,
                "last_log_index": status.last_log_index,
                "commit_index": status.commit_index,
                "applied_index": status.applied_index,
                "snapshot_index": status.snapshot_index,
                "purged_index": status.purged_index,
                "millis_since_quorum_ack": status.millis_since_quorum_ack,
                "leader_changes": self.leader_changes.get(),
            },
            "metrics": families,
        })
    }
}

/// Per-queue families, read from the replicated queue statistics at scrape
/// time (cluster totals, identical on every node).
fn queue_families(all: &[QueueStats]) -> Vec<MetricFamily> {
    type Read = fn(&QueueStats) -> u64;
    let counters: [(&str, &str, Read); 5] = [
        ("produced_total", "Messages produced", |s| s.produced_total),
        ("consumed_total", "Deliveries (first and repeated)", |s| s.consumed_total),
        ("acked_total", "Messages acknowledged", |s| s.acked_total),
        ("redelivered_total", "Messages returned after their visibility timeout", |s| s.redelivered_total),
        ("dead_lettered_total", "Messages moved to the dead-letter queue", |s| s.dead_lettered),
    ];
    let gauges: [(&str, &str, Read); 3] = [
        ("ready", "Messages ready for delivery", |s| s.ready),
        ("in_flight", "Messages leased to a consumer", |s| s.in_flight),
        ("delayed", "Nacked messages waiting for their delay", |s| s.delayed),
    ];
    let family = |name: &str, help: &str, kind: MetricType, read: Read| {
        let mut family = MetricFamily::default();
        family.set_name(format!("dsync_queue_{name}"));
        family.set_help(help.to_string());
        family.set_field_type(kind);
        family.set_metric(
            all.iter()
                .map(|stats| {
                    let mut label = LabelPair::default();
                    label.set_name("queue".to_string());
                    label.set_value(stats.queue.clone());
                    let mut metric = Metric::default();
                    metric.set_label(vec![label]);
                    let value = read(stats) as f64;
                    if kind == MetricType::COUNTER {
                        let mut counter = Counter::default();
                        counter.set_value(value);
                        metric.set_counter(counter);
                    } else {
                        let mut gauge = Gauge::default();
                        gauge.set_value(value);
                        metric.set_gauge(gauge);
                    }
                    metric
                })
                .collect(),
        );
        family
    };
    let counters = counters.into_iter().map(|(name, help, read)| family(name, help, MetricType::COUNTER, read));
    let gauges = gauges.into_iter().map(|(name, help, read)| family(name, help, MetricType::GAUGE, read));
    counters.chain(gauges).filter(|f| !f.get_metric().is_empty()).collect()
}

/// One family as JSON: a number when it has a single unlabeled sample,
/// otherwise a list of `{labels..., value}` (histograms give count and sum).
fn family_json(family: &MetricFamily) -> Value {
    let samples: Vec<Value> = family
        .get_metric()
        .iter()
        .map(|m| {
            let mut sample: Map<String, Value> =
                m.label.iter().map(|l| (l.name().to_string(), json!(l.value()))).collect();
            match family.type_() {
                MetricType::COUNTER => sample.insert("value".into(), json!(m.counter.value())),
                MetricType::GAUGE => sample.insert("value".into(), json!(m.gauge.value())),
                MetricType::HISTOGRAM => {
                    sample.insert("count".into(), json!(m.histogram.sample_count()));
                    sample.insert("sum".into(), json!(m.histogram.sample_sum()))
                }
                _ => None,
            };
            Value::Object(sample)
        })
        .collect();
    match samples.as_slice() {
        [Value::Object(only)] if only.len() == 1 && only.contains_key("value") => only["value"].clone(),
        _ => Value::Array(samples),
    }
}

/// axum middleware counting every request by matched route, method and
/// status, and timing it.
pub async fn track_http(State(metrics): State<std::sync::Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.http_latency.with_label_values(&[&route]).observe(started.elapsed().as_secs_f64());
    metrics.http_requests.with_label_values(&[&route, &method, response.status().as_str()]).inc();
    response
}
