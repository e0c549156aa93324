//! Typed calls of the queue routes (API.md, "Distributed queue"), added to
//! the fixture's [`Api`] so every test addresses nodes the same way.
//!
//! Parsing is strict on purpose: a reply whose shape differs from the
//! contract is an `Err` naming the node, the route and the body, whatever the
//! test was about. Every id is checked to be 24 lowercase hex characters, a
//! produce answers one id per message, a delivery count is at least 1, a
//! queue's placement names three distinct members with the primary first,
//! and a queue's stats account for every message it was given.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::fields::{encode_query, str_field, u64_field};
use serde_json::{json, Value};

use crate::common::api::REQUEST_TIMEOUT;
use crate::common::{eventually, Api, Cluster, Reply};

/// Time for a change to show in every node's local stats or metrics.
pub const VISIBLE_TIMEOUT: Duration = Duration::from_secs(15);

/// Length of a message id: 24 lowercase hex characters.
pub const ID_CHARS: usize = 24;

/// Per-queue counter families and the stats field each must agree with.
pub const COUNTERS: [(&str, &str); 5] = [
    ("dsync_queue_produced_total", "produced_total"),
    ("dsync_queue_consumed_total", "consumed_total"),
    ("dsync_queue_acked_total", "acked_total"),
    ("dsync_queue_redelivered_total", "redelivered_total"),
    ("dsync_queue_dead_lettered_total", "dead_lettered"),
];

/// Per-queue gauge families and the stats field each must agree with.
pub const GAUGES: [(&str, &str); 2] = [("dsync_queue_ready", "ready"), ("dsync_queue_in_flight", "in_flight")];

/// What a consume sends: `POST /queue/consume`'s body.
#[derive(Debug, Clone)]
pub struct Consume {
    pub queue: String,
    pub consumer: String,
    /// `None` leaves the field out (server default 1).
    pub max: Option<u64>,
    /// `None` leaves the field out (server default 30000).
    pub visibility_ms: Option<u64>,
    /// `None` leaves the field out (server default 0).
    pub wait_ms: Option<u64>,
}

impl Consume {
    /// A consume with every optional field left to the server's default.
    pub fn new(queue: &str, consumer: &str) -> Consume {
        Consume { queue: queue.into(), consumer: consumer.into(), max: None, visibility_ms: None, wait_ms: None }
    }

    pub fn max(self, max: u64) -> Consume {
        Consume { max: Some(max), ..self }
    }

    pub fn visibility_ms(self, visibility_ms: u64) -> Consume {
        Consume { visibility_ms: Some(visibility_ms), ..self }
    }

    pub fn wait_ms(self, wait_ms: u64) -> Consume {
        Consume { wait_ms: Some(wait_ms), ..self }
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        let mut body = json!({"queue": self.queue, "consumer": self.consumer});
        if let Some(max) = self.max {
            body["max"] = json!(max);
        }
        if let Some(visibility_ms) = self.visibility_ms {
            body["visibility_ms"] = json!(visibility_ms);
        }
        if let Some(wait_ms) = self.wait_ms {
            body["wait_ms"] = json!(wait_ms);
        }
        body
    }

    /// Client-side bound of this request: its wait plus an ordinary request.
    pub fn http_timeout(&self) -> Duration {
        Duration::from_millis(self.wait_ms.unwrap_or(0)) + REQUEST_TIMEOUT
    }
}

impl fmt::Display for Consume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "consume {} by {} ({})", self.queue, self.consumer, self.body())
    }
}

/// One message of a consume's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: String,
    pub message: Value,
    pub delivery_count: u64,
    /// The produce's `key`, when it had one.
    pub key: Option<String>,
}

impl Delivery {
    fn parse(value: &Value) -> Result<Delivery, String> {
        let id = value["id"].as_str().ok_or("id is not a string")?.to_owned();
        check_id(&id)?;
        let delivery_count = value["delivery_count"].as_u64().ok_or("delivery_count is not a non-negative integer")?;
        if delivery_count == 0 {
            return Err("delivery_count 0 (the first delivery is 1)".into());
        }
        let message = match value.get("message") {
            Some(message) => message.clone(),
            None => return Err("no message field".into()),
        };
        let key = match value.get("key") {
            None | Some(Value::Null) => None,
            Some(Value::String(key)) => Some(key.clone()),
            Some(other) => return Err(format!("key is not a string: {other}")),
        };
        Ok(Delivery { id, message, delivery_count, key })
    }
}

/// `GET /queue/stats?queue=Q`, or one element of `GET /queue/stats`.
#[derive(Debug, Clone)]
pub struct Stats {
    pub queue: String,
    pub ready: u64,
    pub in_flight: u64,
    pub delayed: u64,
    pub dead_lettered: u64,
    pub produced_total: u64,
    pub consumed_total: u64,
    pub acked_total: u64,
    pub redelivered_total: u64,
    pub primary: String,
    /// Primary first.
    pub replicas: Vec<String>,
    /// The body as received, for failure messages.
    pub raw: Value,
}

impl Stats {
    /// Parses and checks one queue's stats (see the module doc).
    pub fn parse(body: &Value) -> Result<Stats, String> {
        let context = |e: String| format!("{e} in queue stats {body}");
        let number = |name: &str| u64_field(body, name).map_err(context);
        let placement = &body["placement"];
        let primary = str_field(placement, "primary").map_err(|e| context(format!("placement: {e}")))?;
        let replicas = placement["replicas"]
            .as_array()
            .ok_or_else(|| context("placement.replicas is not an array".into()))?
            .iter()
            .map(|r| {
                r.as_str().map(str::to_owned).ok_or_else(|| context(format!("placement replica {r} is no string")))
            })
            .collect::<Result<Vec<String>, String>>()?;
        let stats = Stats {
            queue: str_field(body, "queue").map_err(context)?,
            ready: number("ready")?,
            in_flight: number("in_flight")?,
            delayed: number("delayed")?,
            dead_lettered: number("dead_lettered")?,
            produced_total: number("produced_total")?,
            consumed_total: number("consumed_total")?,
            acked_total: number("acked_total")?,
            redelivered_total: number("redelivered_total")?,
            primary,
            replicas,
            raw: body.clone(),
        };
        stats.check_placement().map_err(context)?;
        stats.check_conservation().map_err(context)?;
        Ok(stats)
    }

    /// Every message produced into the queue (dead-lettered ones count in
    /// the dead-letter queue's `produced_total`) is in exactly one place:
    /// ready, in flight, delayed, acked or dead-lettered. Nothing vanishes.
    fn check_conservation(&self) -> Result<(), String> {
        let accounted = self.ready + self.in_flight + self.delayed + self.acked_total + self.dead_lettered;
        if accounted != self.produced_total {
            return Err(format!(
                "ready + in_flight + delayed + acked_total + dead_lettered = {accounted}, but produced_total = {}",
                self.produced_total
            ));
        }
        Ok(())
    }

    /// Three distinct `nodeN` members, the primary first.
    fn check_placement(&self) -> Result<(), String> {
        let distinct: BTreeSet<&String> = self.replicas.iter().collect();
        if self.replicas.len() != 3 || distinct.len() != 3 {
            return Err(format!("placement.replicas must name 3 distinct members, got {:?}", self.replicas));
        }
        if self.replicas[0] != self.primary {
            return Err(format!(
                "placement.replicas must start with the primary {}: {:?}",
                self.primary, self.replicas
            ));
        }
        if let Some(bad) = self.replicas.iter().find(|r| crate::common::api::node_number(r).is_none()) {
            return Err(format!("placement names {bad:?}, not a nodeN member"));
        }
        Ok(())
    }

    /// The fields that describe the queue's content and history (all but
    /// placement), by name: what two views of one queue must agree on.
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        BTreeMap::from([
            ("ready", self.ready),
            ("in_flight", self.in_flight),
            ("delayed", self.delayed),
            ("dead_lettered", self.dead_lettered),
            ("produced_total", self.produced_total),
            ("consumed_total", self.consumed_total),
            ("acked_total", self.acked_total),
            ("redelivered_total", self.redelivered_total),
        ])
    }

    /// The value of the stats field `name` (one of [`Stats::counts`]).
    pub fn field(&self, name: &str) -> u64 {
        *self.counts().get(name).unwrap_or_else(|| panic!("no stats field {name}"))
    }
}

/// Expected values of some stats fields, by name; the others are not checked.
pub type Expect<'a> = &'a [(&'static str, u64)];

impl Api {
    /// `POST /queue/produce {"queue","message"[,"key"]}` (one message).
    pub async fn produce(&self, id: u64, queue: &str, message: &Value, key: Option<&str>) -> Result<Reply, String> {
        let mut body = json!({"queue": queue, "message": message});
        if let Some(key) = key {
            body["key"] = json!(key);
        }
        self.post(id, "/queue/produce", &body).await
    }

    /// `POST /queue/produce {"queue","messages"[,"key"]}` (a batch).
    pub async fn produce_batch(
        &self,
        id: u64,
        queue: &str,
        messages: &[Value],
        key: Option<&str>,
    ) -> Result<Reply, String> {
        let mut body = json!({"queue": queue, "messages": messages});
        if let Some(key) = key {
            body["key"] = json!(key);
        }
        self.post(id, "/queue/produce", &body).await
    }

    /// A single-message produce that must succeed: returns its id.
    pub async fn produce_ok(&self, id: u64, queue: &str, message: &Value, key: Option<&str>) -> String {
        let context = format!("node{id} POST /queue/produce {queue} {message} (key {key:?})");
        let reply = self.produce(id, queue, message, key).await.unwrap_or_else(|e| panic!("{context}: {e}"));
        let ids = parse_produced(&reply, queue, 1).unwrap_or_else(|e| panic!("{context}: {e}"));
        ids.into_iter().next().expect("one id")
    }

    /// A batch produce that must succeed: returns the ids, in message order.
    pub async fn produce_batch_ok(&self, id: u64, queue: &str, messages: &[Value], key: Option<&str>) -> Vec<String> {
        let context = format!("node{id} POST /queue/produce {queue} batch of {} (key {key:?})", messages.len());
        let reply = self.produce_batch(id, queue, messages, key).await.unwrap_or_else(|e| panic!("{context}: {e}"));
        parse_produced(&reply, queue, messages.len()).unwrap_or_else(|e| panic!("{context}: {e}"))
    }

    /// `POST /queue/consume`, bounded by the request's wait.
    pub async fn consume_reply(&self, id: u64, request: &Consume) -> Result<Reply, String> {
        self.post_with_timeout(id, "/queue/consume", &request.body(), request.http_timeout()).await
    }

    /// `POST /queue/consume`: `Ok(deliveries)` on a well-formed 200.
    pub async fn consume(&self, id: u64, request: &Consume) -> Result<Vec<Delivery>, String> {
        let reply = self.consume_reply(id, request).await?;
        parse_consumed(&reply, request).map_err(|e| format!("node{id} {e}"))
    }

    /// A consume that must succeed; panics otherwise.
    pub async fn consume_ok(&self, id: u64, request: &Consume) -> Vec<Delivery> {
        self.consume(id, request).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// `POST /queue/ack`: `Ok(acked)`.
    pub async fn ack(&self, id: u64, queue: &str, ids: &[String]) -> Result<u64, String> {
        let reply = self.post(id, "/queue/ack", &json!({"queue": queue, "ids": ids})).await?;
        match (reply.status, reply.body["acked"].as_u64()) {
            (200, Some(acked)) => Ok(acked),
            _ => Err(format!("node{id} POST /queue/ack {queue} {ids:?}: {reply}")),
        }
    }

    /// An ack that must answer `acked: expected`; panics otherwise.
    pub async fn ack_expect(&self, id: u64, queue: &str, ids: &[String], expected: u64) {
        let acked = self.ack(id, queue, ids).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(acked, expected, "node{id} POST /queue/ack {queue} {ids:?}: acked");
    }

    /// `POST /queue/nack` (`delay_ms` left out when `None`): `Ok(requeued)`.
    pub async fn nack(&self, id: u64, queue: &str, ids: &[String], delay_ms: Option<u64>) -> Result<u64, String> {
        let mut body = json!({"queue": queue, "ids": ids});
        if let Some(delay_ms) = delay_ms {
            body["delay_ms"] = json!(delay_ms);
        }
        let reply = self.post(id, "/queue/nack", &body).await?;
        match (reply.status, reply.body["requeued"].as_u64()) {
            (200, Some(requeued)) => Ok(requeued),
            _ => Err(format!("node{id} POST /queue/nack {body}: {reply}")),
        }
    }

    /// A nack that must answer `requeued: expected`; panics otherwise.
    pub async fn nack_expect(&self, id: u64, queue: &str, ids: &[String], delay_ms: Option<u64>, expected: u64) {
        let requeued = self.nack(id, queue, ids, delay_ms).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(requeued, expected, "node{id} POST /queue/nack {queue} {ids:?} delay {delay_ms:?}: requeued");
    }

    /// `GET /queue/stats?queue=Q[&consistency=C]`, checked to name `queue`.
    pub async fn queue_stats_at(&self, id: u64, queue: &str, consistency: Option<&str>) -> Result<Stats, String> {
        let mut path = format!("/queue/stats?queue={}", encode_query(queue));
        if let Some(consistency) = consistency {
            path.push_str(&format!("&consistency={consistency}"));
        }
        let body = self.get_ok(id, &path).await?;
        let stats = Stats::parse(&body).map_err(|e| format!("node{id} GET {path}: {e}"))?;
        if stats.queue != queue {
            return Err(format!("node{id} GET {path}: names queue {:?}: {body}", stats.queue));
        }
        Ok(stats)
    }

    /// `GET /queue/stats?queue=Q` (linearizable by default).
    pub async fn queue_stats(&self, id: u64, queue: &str) -> Result<Stats, String> {
        self.queue_stats_at(id, queue, None).await
    }

    /// `GET /queue/stats[?consistency=C]`: every queue, by name.
    pub async fn all_queue_stats(&self, id: u64, consistency: Option<&str>) -> Result<BTreeMap<String, Stats>, String> {
        let path = consistency.map_or_else(|| "/queue/stats".to_owned(), |c| format!("/queue/stats?consistency={c}"));
        let body = self.get_ok(id, &path).await?;
        let list = body["queues"].as_array().ok_or_else(|| format!("node{id} GET {path}: no queues array: {body}"))?;
        let mut all = BTreeMap::new();
        for element in list {
            let stats = Stats::parse(element).map_err(|e| format!("node{id} GET {path}: {e}"))?;
            if let Some(twice) = all.insert(stats.queue.clone(), stats) {
                return Err(format!("node{id} GET {path}: lists {} twice", twice.queue));
            }
        }
        Ok(all)
    }

    /// Asserts that node `id`'s linearizable stats of `queue` have the
    /// `expected` values; returns them.
    pub async fn assert_stats(&self, id: u64, queue: &str, expected: Expect<'_>, context: &str) -> Stats {
        let stats = self.queue_stats(id, queue).await.unwrap_or_else(|e| panic!("{context}: {e}"));
        if let Err(e) = stats_match(&stats, expected) {
            panic!("{context}: node{id} GET /queue/stats?queue={queue}: {e}");
        }
        stats
    }
}

impl Cluster {
    /// Waits until every running node's own (`consistency=local`) stats of
    /// `queue` equal `expected` in every field but placement; returns them.
    pub async fn wait_local_stats_equal(&self, queue: &str, expected: &Stats, context: &str) -> Vec<Stats> {
        let nodes = self.running();
        let what = format!("{context}: every node's local stats of {queue} to equal {}", expected.raw);
        eventually(what, VISIBLE_TIMEOUT, async || {
            let mut all = Vec::new();
            for &id in &nodes {
                let stats = self.queue_stats_at(id, queue, Some("local")).await?;
                if stats.counts() != expected.counts() {
                    return Err(format!("node{id} local: {}", stats.raw));
                }
                all.push(stats);
            }
            Ok(all)
        })
        .await
    }

    /// Waits until the per-queue metric families of `queue` (labelled
    /// `queue`) agree with its `stats` on the running nodes. A counter may be
    /// kept either way a Prometheus user can read: from applied entries
    /// (every node shows the cluster's total) or where the work was done
    /// (the nodes' values add up to it); a gauge is the queue's state, so
    /// every node that shows one must show the stats' value, and some node
    /// must show it.
    pub async fn wait_queue_metrics_match(&self, stats: &Stats, context: &str) {
        let nodes = self.running();
        let queue = stats.queue.as_str();
        let what = format!("{context}: the queue metrics of {queue} to match its stats {}", stats.raw);
        eventually(what, VISIBLE_TIMEOUT, async || {
            for (family, field) in COUNTERS {
                let expected = stats.field(field) as f64;
                let values = self.metric_per_node(&nodes, family, &[("queue", queue)]).await?;
                let sum: f64 = values.values().sum();
                let everywhere = values.values().all(|&v| v == expected);
                if !(everywhere || sum == expected) {
                    return Err(format!(
                        "{family}{{queue={queue:?}}} per node {values:?}: neither each node nor their sum is {expected} \
                         ({field} in the stats)"
                    ));
                }
            }
            for (family, field) in GAUGES {
                let expected = stats.field(field) as f64;
                let mut shown = BTreeMap::new();
                for &id in &nodes {
                    if let Some(value) = self.metric_labelled(id, family, &[("queue", queue)]).await? {
                        shown.insert(id, value);
                    }
                }
                if shown.is_empty() && expected != 0.0 {
                    return Err(format!("no node shows {family}{{queue={queue:?}}}; stats say {field} = {expected}"));
                }
                if shown.values().any(|&v| v != expected) {
                    return Err(format!("{family}{{queue={queue:?}}} per node {shown:?}; stats say {field} = {expected}"));
                }
            }
            Ok(())
        })
        .await;
    }
}

/// Checks `stats` against `expected`; `Err` lists every difference.
pub fn stats_match(stats: &Stats, expected: Expect<'_>) -> Result<(), String> {
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(field, value)| stats.field(field) != *value)
        .map(|(field, value)| format!("{field} = {} (expected {value})", stats.field(field)))
        .collect();
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("{} in {}", wrong.join(", "), stats.raw))
    }
}

/// The ids of a successful produce of `count` messages to `queue`.
pub fn parse_produced(reply: &Reply, queue: &str, count: usize) -> Result<Vec<String>, String> {
    if reply.status != 200 {
        return Err(format!("expected 200, got {reply}"));
    }
    if reply.body["queue"].as_str() != Some(queue) {
        return Err(format!("the answer does not name queue {queue:?}: {reply}"));
    }
    let ids = reply.body["ids"]
        .as_array()
        .ok_or_else(|| format!("no ids array: {reply}"))?
        .iter()
        .map(|id| {
            let id = id.as_str().ok_or_else(|| format!("id {id} is not a string"))?;
            check_id(id)?;
            Ok(id.to_owned())
        })
        .collect::<Result<Vec<String>, String>>()
        .map_err(|e| format!("{e}: {reply}"))?;
    if ids.len() != count {
        return Err(format!("{} ids for {count} messages: {reply}", ids.len()));
    }
    if ids.iter().collect::<BTreeSet<_>>().len() != ids.len() {
        return Err(format!("the same id twice in one answer: {reply}"));
    }
    Ok(ids)
}

/// The deliveries of a successful consume; never more than `max`.
pub fn parse_consumed(reply: &Reply, request: &Consume) -> Result<Vec<Delivery>, String> {
    if reply.status != 200 {
        return Err(format!("{request}: expected 200, got {reply}"));
    }
    let list = reply.body["messages"].as_array().ok_or_else(|| format!("{request}: no messages array: {reply}"))?;
    let deliveries = list
        .iter()
        .map(Delivery::parse)
        .collect::<Result<Vec<Delivery>, String>>()
        .map_err(|e| format!("{request}: {e}: {reply}"))?;
    let max = request.max.unwrap_or(1) as usize;
    if deliveries.len() > max {
        return Err(format!("{request}: {} messages, more than max {max}: {reply}", deliveries.len()));
    }
    if deliveries.iter().map(|d| &d.id).collect::<BTreeSet<_>>().len() != deliveries.len() {
        return Err(format!("{request}: the same id twice in one answer: {reply}"));
    }
    Ok(deliveries)
}

/// `Err` unless `id` is 24 lowercase hex characters.
pub fn check_id(id: &str) -> Result<(), String> {
    if id.len() == ID_CHARS && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(format!("id {id:?} is not {ID_CHARS} lowercase hex characters"))
    }
}

/// The ids of `deliveries`, in order.
pub fn ids_of(deliveries: &[Delivery]) -> Vec<String> {
    deliveries.iter().map(|d| d.id.clone()).collect()
}

/// Milliseconds since the Unix epoch on this machine (the nodes' clock too).
pub fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).expect("the clock is after 1970");
    u64::try_from(since.as_millis()).expect("milliseconds fit in u64")
}

/// Consumes from `queue` through node `id` (wait 0) until some message
/// comes, or panics after `timeout`; returns the deliveries and the moment
/// the successful request was sent. For a message that is expected to come
/// back on its own (lease run out, nack delay over).
pub async fn consume_until_some(
    api: &Api,
    id: u64,
    request: &Consume,
    timeout: Duration,
    what: &str,
) -> (Vec<Delivery>, Instant) {
    eventually(what, timeout, async || {
        let sent = Instant::now();
        let deliveries = api.consume(id, request).await?;
        if deliveries.is_empty() {
            Err(format!("node{id}: {request} returned no message"))
        } else {
            Ok((deliveries, sent))
        }
    })
    .await
}
