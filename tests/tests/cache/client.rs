//! Typed calls of the cache routes (API.md, "Coherent cache (MESI)"), added
//! to the fixture's [`Api`] so every test addresses nodes the same way, and
//! the readers of the cache's Prometheus families.
//!
//! Parsing is strict on purpose: a reply whose shape differs from the
//! contract is an `Err` naming the node, the route and the body, whatever the
//! test was about. A read names the key asked for, a state of M, E or S and a
//! version of at least 1; a put answers state M; a node's `/cache/state`
//! names that node, lists only held lines (M, E or S) and no more of them
//! than its capacity, and carries every cache metric.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::api::shorten;
use crate::common::fields::{encode_query, str_field, u64_field};
use crate::common::{eventually, Api, Reply, CONVERGE_TIMEOUT};

/// Time for a change to show where it is only eventually visible
/// (write-back to Redis, metrics of another node).
pub const VISIBLE_TIMEOUT: Duration = Duration::from_secs(15);

/// Longest cache key, in bytes of UTF-8 (API.md, conventions).
pub const KEY_BYTES_MAX: usize = 256;

/// States a held line may be in; I is "no line".
const HELD_STATES: [&str; 3] = ["M", "E", "S"];

/// `GET /cache/get`'s answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    pub key: String,
    pub value: Value,
    /// `M`, `E` or `S`: this node's line after the read; `I` if it kept none.
    pub state: String,
    /// Served from this node's own line.
    pub hit: bool,
    pub version: u64,
}

/// `POST /cache/put`'s answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub key: String,
    pub version: u64,
}

/// One line of `/cache/state`.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub key: String,
    pub state: String,
    pub version: u64,
}

/// `/cache/state`'s `metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheMetrics {
    pub hits: u64,
    pub misses: u64,
    pub hit_ratio: f64,
    pub evictions: u64,
    pub writebacks: u64,
    pub invalidations: u64,
    pub invalidations_sent: u64,
    pub peer_fetches: u64,
    pub backing_reads: u64,
    pub backing_errors: u64,
    /// `"I->M"` -> count.
    pub transitions: BTreeMap<String, u64>,
}

impl CacheMetrics {
    /// Count of the transition `from -> to` (0 when never taken).
    pub fn transition(&self, from: &str, to: &str) -> u64 {
        self.transitions.get(&format!("{from}->{to}")).copied().unwrap_or(0)
    }
}

/// `GET /cache/state[?key=]` of one node.
#[derive(Debug, Clone)]
pub struct CacheState {
    pub node_id: String,
    pub capacity: u64,
    pub size: u64,
    /// `embedded` or `redis`.
    pub backing: String,
    pub lease_valid: bool,
    /// Most recently used first.
    pub lines: Vec<Line>,
    pub metrics: CacheMetrics,
    /// The body as received, for failure messages.
    pub raw: Value,
}

impl CacheState {
    /// This node's line of `key`, if it holds one.
    pub fn line(&self, key: &str) -> Option<&Line> {
        self.lines.iter().find(|line| line.key == key)
    }

    /// The keys of the lines, most recently used first.
    pub fn keys(&self) -> Vec<&str> {
        self.lines.iter().map(|line| line.key.as_str()).collect()
    }

    /// The lines as `key:state:version`, for failure messages.
    pub fn shown(&self) -> String {
        let lines: Vec<String> = self.lines.iter().map(|l| format!("{}:{}:v{}", l.key, l.state, l.version)).collect();
        format!("[{}]", lines.join(", "))
    }
}

impl Api {
    /// `GET /cache/get?key=` on node `id`, any answer.
    pub async fn cache_get_reply(&self, id: u64, key: &str) -> Result<Reply, String> {
        self.get(id, &format!("/cache/get?key={}", encode_query(key))).await
    }

    /// `GET /cache/get?key=` that must answer 200 with the contract's shape.
    pub async fn cache_get(&self, id: u64, key: &str) -> Result<Read, String> {
        let reply = self.cache_get_reply(id, key).await?;
        parse_read(&reply, key).map_err(|e| format!("node{id} GET /cache/get?key={key}: {e}"))
    }

    /// `POST /cache/put {"key","value"}` on node `id` bounded by `timeout`, any answer.
    pub async fn cache_put_reply(&self, id: u64, key: &str, value: &Value, timeout: Duration) -> Result<Reply, String> {
        self.post_with_timeout(id, "/cache/put", &json!({"key": key, "value": value}), timeout).await
    }

    /// `POST /cache/put` that must answer 200 `{"key","version","state":"M"}`.
    pub async fn cache_put(&self, id: u64, key: &str, value: &Value) -> Result<Written, String> {
        let reply = self.cache_put_reply(id, key, value, crate::common::api::REQUEST_TIMEOUT).await?;
        parse_written(&reply, key).map_err(|e| format!("node{id} POST /cache/put {key}: {e}"))
    }

    /// `POST /cache/invalidate {"key"}` on node `id`, any answer.
    pub async fn cache_invalidate_reply(&self, id: u64, key: &str) -> Result<Reply, String> {
        self.post(id, "/cache/invalidate", &json!({ "key": key })).await
    }

    /// `POST /cache/invalidate` that must answer 200 `{"key","invalidated":true}`.
    pub async fn cache_invalidate(&self, id: u64, key: &str) -> Result<(), String> {
        let reply = self.cache_invalidate_reply(id, key).await?;
        parse_flag(&reply, key, "invalidated").map_err(|e| format!("node{id} POST /cache/invalidate {key}: {e}"))
    }

    /// `POST /cache/delete {"key"}` on node `id`, any answer.
    pub async fn cache_delete_reply(&self, id: u64, key: &str) -> Result<Reply, String> {
        self.post(id, "/cache/delete", &json!({ "key": key })).await
    }

    /// `POST /cache/delete` that must answer 200 `{"key","deleted":true}`.
    pub async fn cache_delete(&self, id: u64, key: &str) -> Result<(), String> {
        let reply = self.cache_delete_reply(id, key).await?;
        parse_flag(&reply, key, "deleted").map_err(|e| format!("node{id} POST /cache/delete {key}: {e}"))
    }

    /// `GET /cache/state` (with `?key=` when `key` is given) of node `id`.
    pub async fn cache_state(&self, id: u64, key: Option<&str>) -> Result<CacheState, String> {
        let path = match key {
            Some(key) => format!("/cache/state?key={}", encode_query(key)),
            None => "/cache/state".to_owned(),
        };
        let body = self.get_ok(id, &path).await?;
        parse_state(&body, id, key).map_err(|e| format!("node{id} GET {path}: {e} in {}", shorten(&body.to_string())))
    }

    /// Node `id`'s line of `key` (`None`: it holds none), from `/cache/state?key=`.
    pub async fn cache_line(&self, id: u64, key: &str) -> Result<Option<Line>, String> {
        Ok(self.cache_state(id, Some(key)).await?.line(key).cloned())
    }
}

/// A 200 `/cache/get` answer for `key`, or why the reply is not one.
pub fn parse_read(reply: &Reply, key: &str) -> Result<Read, String> {
    if reply.status != 200 {
        return Err(format!("expected 200, got {reply}"));
    }
    let body = &reply.body;
    let context = |e: String| format!("{e} in {reply}");
    let read = Read {
        key: str_field(body, "key").map_err(context)?,
        value: body.get("value").cloned().ok_or_else(|| context("no value field".into()))?,
        state: str_field(body, "state").map_err(context)?,
        hit: body["hit"].as_bool().ok_or_else(|| context("hit is not a boolean".into()))?,
        version: u64_field(body, "version").map_err(context)?,
    };
    if read.key != key {
        return Err(context(format!("asked for key {key:?}, the answer names {:?}", read.key)));
    }
    // `I`: the node answered but did not keep the line (a put overtook its
    // fill); docs/api_spec.yaml documents it.
    if !HELD_STATES.contains(&read.state.as_str()) && read.state != "I" {
        return Err(context(format!("state {:?} is not M, E, S or I", read.state)));
    }
    if read.version == 0 {
        return Err(context("version 0 (a put's version is at least 1)".into()));
    }
    Ok(read)
}

/// A 200 `/cache/put` answer for `key`, or why the reply is not one.
pub fn parse_written(reply: &Reply, key: &str) -> Result<Written, String> {
    if reply.status != 200 {
        return Err(format!("expected 200, got {reply}"));
    }
    let body = &reply.body;
    let context = |e: String| format!("{e} in {reply}");
    let written = Written {
        key: str_field(body, "key").map_err(context)?,
        version: u64_field(body, "version").map_err(context)?,
    };
    if written.key != key {
        return Err(context(format!("put key {key:?}, the answer names {:?}", written.key)));
    }
    if written.version == 0 {
        return Err(context("version 0".into()));
    }
    let state = str_field(body, "state").map_err(context)?;
    if state != "M" {
        return Err(context(format!("the writer's line is {state:?} after a put, expected M")));
    }
    Ok(written)
}

/// A 200 `{"key": key, flag: true}` answer.
fn parse_flag(reply: &Reply, key: &str, flag: &str) -> Result<(), String> {
    if reply.status != 200 {
        return Err(format!("expected 200, got {reply}"));
    }
    if reply.body["key"].as_str() != Some(key) || reply.body[flag] != Value::Bool(true) {
        return Err(format!("expected {{\"key\":{key:?},\"{flag}\":true}}, got {reply}"));
    }
    Ok(())
}

fn parse_state(body: &Value, id: u64, key: Option<&str>) -> Result<CacheState, String> {
    let node_id = str_field(body, "node_id")?;
    if node_id != format!("node{id}") {
        return Err(format!("node_id {node_id:?} on node{id}"));
    }
    let backing = str_field(body, "backing")?;
    if backing != "embedded" && backing != "redis" {
        return Err(format!("backing {backing:?} is neither embedded nor redis"));
    }
    let lines = body["lines"]
        .as_array()
        .ok_or("lines is not an array")?
        .iter()
        .map(|line| {
            let parsed = Line {
                key: str_field(line, "key")?,
                state: str_field(line, "state")?,
                version: u64_field(line, "version")?,
            };
            if !HELD_STATES.contains(&parsed.state.as_str()) {
                return Err(format!(
                    "line {line} is in state {:?}: lines lists held lines (M, E, S) only",
                    parsed.state
                ));
            }
            Ok(parsed)
        })
        .collect::<Result<Vec<Line>, String>>()?;
    let state = CacheState {
        node_id,
        capacity: u64_field(body, "capacity")?,
        size: u64_field(body, "size")?,
        backing,
        lease_valid: body["lease_valid"].as_bool().ok_or("lease_valid is not a boolean")?,
        metrics: parse_metrics(&body["metrics"]).map_err(|e| format!("metrics: {e}"))?,
        lines,
        raw: body.clone(),
    };
    if state.size > state.capacity {
        return Err(format!("size {} above capacity {}", state.size, state.capacity));
    }
    if key.is_none() && state.lines.len() as u64 != state.size {
        return Err(format!("size {} but {} lines listed", state.size, state.lines.len()));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(line) = state.lines.iter().find(|line| !seen.insert(line.key.as_str())) {
        return Err(format!("key {:?} listed twice", line.key));
    }
    Ok(state)
}

fn parse_metrics(metrics: &Value) -> Result<CacheMetrics, String> {
    let transitions = metrics["transitions"]
        .as_object()
        .ok_or("transitions is not an object")?
        .iter()
        .map(|(name, count)| {
            let valid = name.split_once("->").is_some_and(|(from, to)| {
                ["M", "E", "S", "I"].contains(&from) && ["M", "E", "S", "I"].contains(&to) && from != to
            });
            if !valid {
                return Err(format!("transition {name:?} is not X->Y with X != Y in M, E, S, I"));
            }
            count.as_u64().map(|count| (name.clone(), count)).ok_or_else(|| format!("transition {name}: {count}"))
        })
        .collect::<Result<BTreeMap<String, u64>, String>>()?;
    let hit_ratio = metrics["hit_ratio"].as_f64().ok_or("hit_ratio is not a number")?;
    if !(0.0..=1.0).contains(&hit_ratio) {
        return Err(format!("hit_ratio {hit_ratio} outside [0, 1]"));
    }
    Ok(CacheMetrics {
        hits: u64_field(metrics, "hits")?,
        misses: u64_field(metrics, "misses")?,
        hit_ratio,
        evictions: u64_field(metrics, "evictions")?,
        writebacks: u64_field(metrics, "writebacks")?,
        invalidations: u64_field(metrics, "invalidations")?,
        invalidations_sent: u64_field(metrics, "invalidations_sent")?,
        peer_fetches: u64_field(metrics, "peer_fetches")?,
        backing_reads: u64_field(metrics, "backing_reads")?,
        backing_errors: u64_field(metrics, "backing_errors")?,
        transitions,
    })
}

/// The value of the Prometheus sample `name` carrying every label of
/// `labels`, summed over matching samples; `None` when there is none.
/// Histograms are read through their `_count` / `_sum` / `_bucket` names.
pub fn prometheus_sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut total = None;
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (label_text, value) = if let Some(inner) = rest.strip_prefix('{') {
            let Some((inner, value)) = inner.split_once('}') else {
                continue;
            };
            (inner, value)
        } else if rest.starts_with(' ') {
            ("", rest)
        } else {
            continue;
        };
        let matches = labels.iter().all(|(label, wanted)| label_text.contains(&format!("{label}=\"{wanted}\"")));
        if !matches {
            continue;
        }
        if let Some(value) = value.split_whitespace().next().and_then(|v| v.parse::<f64>().ok()) {
            total = Some(total.unwrap_or(0.0) + value);
        }
    }
    total
}

impl Api {
    /// Asserts node `id`'s line of `key` right now: `Some((state, version))`,
    /// or `None` for no line. `context` names the step.
    pub async fn expect_line(&self, id: u64, key: &str, expected: Option<(&str, u64)>, context: &str) {
        let state = self.cache_state(id, Some(key)).await.unwrap_or_else(|e| panic!("{context}: {e}"));
        let found = state.line(key).map(|line| (line.state.as_str(), line.version));
        assert_eq!(
            found,
            expected,
            "{context}: node{id}'s line of {key:?} (state, version) should be {expected:?}, /cache/state?key shows {}",
            state.shown()
        );
    }

    /// Like [`Api::expect_line`], for changes a node learns only when it
    /// applies someone else's entry (a peer's fill downgrading its line):
    /// the reader's get returns once the reader has applied its fill, the
    /// former holder follows within the convergence deadline.
    pub async fn expect_line_eventually(&self, id: u64, key: &str, expected: Option<(&str, u64)>, context: &str) {
        eventually(
            format!("{context}: node{id}'s line of {key:?} becomes {expected:?}"),
            CONVERGE_TIMEOUT,
            async || {
                let state = self.cache_state(id, Some(key)).await?;
                let found = state.line(key).map(|line| (line.state.as_str(), line.version));
                if found == expected {
                    Ok(())
                } else {
                    Err(format!("/cache/state?key shows {}", state.shown()))
                }
            },
        )
        .await;
    }

    /// `/cache/state` of node `id`, panicking with `context` on failure.
    pub async fn cache_state_ok(&self, id: u64, context: &str) -> CacheState {
        self.cache_state(id, None).await.unwrap_or_else(|e| panic!("{context}: {e}"))
    }
}
