//! A small HTTP client for the dsync API, addressed by node number.
//!
//! Every call returns `Result<_, String>`: `Err` carries the node, the route
//! and what went wrong, ready to be shown in a test's failure message or to be
//! retried by [`crate::common::poll::eventually`]. Nothing here panics except
//! the `*_retrying` helpers, which exist to hide expected transient failures
//! (elections) and panic with context when the failure is not transient.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Time allowed for one ordinary request: long enough for a forwarded,
/// fsynced write on a loaded box, short enough to fail a test promptly.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Time allowed to open a TCP connection to a node on 127.0.0.1.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Entries asked for per `/raft/log` page (the contract's own example).
const LOG_PAGE_ENTRIES_MAX: u64 = 100;

/// Longest body text kept in failure messages.
const SHOWN_TEXT_BYTES_MAX: usize = 600;

/// One HTTP response: status, raw text, and the text parsed as JSON
/// (`Value::Null` when it is not JSON), so tests can assert on both.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// The `Content-Type` header, if any: the contract says bodies are JSON.
    pub content_type: Option<String>,
    /// The body parsed as JSON, or `Value::Null` if it is not JSON.
    pub body: Value,
    /// The body as received.
    pub text: String,
}

impl Reply {
    /// True for a 2xx status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The contract's `error.code`, if the body has one.
    pub fn error_code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {} {}", self.status, shorten(&self.text))
    }
}

/// What `POST /raft/append` acknowledges: where the entry was committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Log index of the committed entry.
    pub index: u64,
    /// Term in which it was committed.
    pub term: u64,
}

/// One page of `GET /raft/log`.
#[derive(Debug, Clone)]
pub struct LogPage {
    /// The entries returned, as JSON objects with at least `index`.
    pub entries: Vec<Value>,
    /// First index still in the log (earlier ones are in a snapshot);
    /// `None` if the node did not report it.
    pub first_index: Option<u64>,
    /// Last index in the node's log.
    pub last_index: u64,
}

/// An HTTP client bound to the nodes of one test cluster.
///
/// Cheap to clone and `'static`, so client tasks spawned by a test (the
/// crash-during-writes test) can each own one.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    ports: Arc<BTreeMap<u64, u16>>,
}

impl Api {
    /// A client for nodes `nodeN` listening on `127.0.0.1:ports[N]`.
    ///
    /// Connection pooling is off: nodes are killed and restarted on the same
    /// port, and a pooled connection to a dead process would turn the next
    /// request into a spurious failure.
    pub fn new(ports: BTreeMap<u64, u16>) -> Api {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(0)
            .build()
            .expect("build the HTTP client");
        Api { http, ports: Arc::new(ports) }
    }

    /// The TCP port of node `id`; panics for a node the cluster never had.
    pub fn port(&self, id: u64) -> u16 {
        *self.ports.get(&id).unwrap_or_else(|| panic!("node{id} is not part of this test cluster"))
    }

    /// The node's base address as the cluster knows it (`http://127.0.0.1:P`).
    pub fn addr(&self, id: u64) -> String {
        format!("http://127.0.0.1:{}", self.port(id))
    }

    /// `GET path` on node `id`.
    pub async fn get(&self, id: u64, path: &str) -> Result<Reply, String> {
        let request = self.http.get(format!("{}{path}", self.addr(id)));
        send(id, "GET", path, request).await
    }

    /// `POST path` with a JSON body on node `id`, default timeout.
    pub async fn post(&self, id: u64, path: &str, body: &Value) -> Result<Reply, String> {
        self.post_with_timeout(id, path, body, REQUEST_TIMEOUT).await
    }

    /// `POST path` with a JSON body on node `id`, bounded by `timeout`.
    pub async fn post_with_timeout(
        &self,
        id: u64,
        path: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<Reply, String> {
        let request = self.http.post(format!("{}{path}", self.addr(id))).json(body).timeout(timeout);
        send(id, "POST", path, request).await
    }

    /// `POST path` with arbitrary bytes (malformed JSON, wrong content type).
    pub async fn post_bytes(
        &self,
        id: u64,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Reply, String> {
        let mut request = self.http.post(format!("{}{path}", self.addr(id))).body(body);
        if let Some(content_type) = content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, content_type);
        }
        send(id, "POST", path, request).await
    }

    /// `GET path` that must answer 2xx; returns the JSON body.
    pub async fn get_ok(&self, id: u64, path: &str) -> Result<Value, String> {
        let reply = self.get(id, path).await?;
        if reply.is_success() {
            Ok(reply.body)
        } else {
            Err(format!("node{id} GET {path}: {reply}"))
        }
    }

    /// `GET /health` (must be 200, also when `degraded`).
    pub async fn health(&self, id: u64) -> Result<Value, String> {
        self.get_ok(id, "/health").await
    }

    /// The applied index node `id` reports in `/health`.
    pub async fn applied_index(&self, id: u64) -> Result<u64, String> {
        let health = self.health(id).await?;
        health["applied_index"]
            .as_u64()
            .ok_or_else(|| format!("node{id} /health has no numeric applied_index: {health}"))
    }

    /// The leader node `id` believes in, from `GET /raft/leader`.
    pub async fn leader_seen_by(&self, id: u64) -> Result<Option<u64>, String> {
        let body = self.get_ok(id, "/raft/leader").await?;
        match &body["leader"] {
            Value::Null => Ok(None),
            Value::String(name) => {
                node_number(name).map(Some).ok_or_else(|| format!("node{id} /raft/leader names no nodeN: {body}"))
            }
            _ => Err(format!("node{id} /raft/leader: leader is not a string: {body}")),
        }
    }

    /// `GET /metrics` and return its `raft` object.
    pub async fn raft_metrics(&self, id: u64) -> Result<Value, String> {
        let body = self.get_ok(id, "/metrics").await?;
        match &body["raft"] {
            raft @ Value::Object(_) => Ok(raft.clone()),
            _ => Err(format!("node{id} /metrics has no raft object: {}", shorten(&body.to_string()))),
        }
    }

    /// Metric family `name` in node `id`'s `GET /metrics` JSON (`metrics.<name>`),
    /// summed over its samples: counters and gauges add their `value`,
    /// histograms their `count` (observations). `None` when the family is
    /// absent (a labelled family with no sample yet, or not implemented).
    pub async fn metric(&self, id: u64, name: &str) -> Result<Option<f64>, String> {
        self.metric_labelled(id, name, &[]).await
    }

    /// Like [`Api::metric`], but only the samples carrying every label
    /// `(label, value)` of `labels` (e.g. `[("queue", "orders")]`) count.
    /// `None` when no sample matches (with `labels` empty: as `metric`).
    pub async fn metric_labelled(&self, id: u64, name: &str, labels: &[(&str, &str)]) -> Result<Option<f64>, String> {
        let body = self.get_ok(id, "/metrics").await?;
        let family = &body["metrics"][name];
        let sample_total =
            |sample: &Value| sample.as_f64().or_else(|| sample["value"].as_f64()).or_else(|| sample["count"].as_f64());
        let matches = |sample: &Value| labels.iter().all(|(label, value)| sample[*label].as_str() == Some(*value));
        match family {
            Value::Null => Ok(None),
            Value::Array(samples) => {
                let mut total = None;
                for sample in samples.iter().filter(|sample| matches(sample)) {
                    let value = sample_total(sample)
                        .ok_or_else(|| format!("node{id} metric {name}: sample without value or count: {sample}"))?;
                    total = Some(total.unwrap_or(0.0) + value);
                }
                Ok(total)
            }
            // A lone unlabelled sample is shown as a bare number: it carries no label.
            _ if !labels.is_empty() => Ok(None),
            other => sample_total(other)
                .map(Some)
                .ok_or_else(|| format!("node{id} metric {name}: not a number or sample list: {other}")),
        }
    }

    /// [`Api::metric_labelled`] on each of the nodes `ids` (absent counts as 0).
    pub async fn metric_per_node(
        &self,
        ids: &[u64],
        name: &str,
        labels: &[(&str, &str)],
    ) -> Result<BTreeMap<u64, f64>, String> {
        let mut values = BTreeMap::new();
        for &id in ids {
            values.insert(id, self.metric_labelled(id, name, labels).await?.unwrap_or(0.0));
        }
        Ok(values)
    }

    /// `GET /metrics?format=prometheus` on node `id`: the text exposition.
    pub async fn prometheus_text(&self, id: u64) -> Result<String, String> {
        let path = "/metrics?format=prometheus";
        let reply = self.get(id, path).await?;
        if reply.is_success() {
            Ok(reply.text)
        } else {
            Err(format!("node{id} GET {path}: {reply}"))
        }
    }

    /// [`Api::metric`] summed over the nodes `ids` (absent counts as 0).
    /// Counters are per process: the sum moves whichever node counts an event.
    pub async fn metric_sum(&self, ids: &[u64], name: &str) -> Result<f64, String> {
        let mut total = 0.0;
        for &id in ids {
            total += self.metric(id, name).await?.unwrap_or(0.0);
        }
        Ok(total)
    }

    /// `POST /raft/append {"data": data}` on node `id`; `Err` unless 2xx with
    /// numeric `index` and `term`.
    pub async fn append(&self, id: u64, data: &Value) -> Result<Appended, String> {
        self.append_with_timeout(id, data, REQUEST_TIMEOUT).await
    }

    /// [`Api::append`] bounded by `timeout`.
    pub async fn append_with_timeout(&self, id: u64, data: &Value, timeout: Duration) -> Result<Appended, String> {
        let reply = self.post_with_timeout(id, "/raft/append", &json!({ "data": data }), timeout).await?;
        parse_appended(id, &reply)
    }

    /// Appends `data` through the nodes `ids` in turn until one acknowledges
    /// it, retrying only what an election explains (connection errors and 503
    /// `unavailable`). Any other answer, or no success within `timeout`,
    /// panics. A retried entry may end up in the log twice; callers that care
    /// compare by the acknowledged index.
    pub async fn append_retrying(&self, ids: &[u64], data: &Value, timeout: Duration) -> Appended {
        let start = Instant::now();
        let mut last = String::from("no attempt made");
        for attempt in 0.. {
            if start.elapsed() >= timeout {
                break;
            }
            let id = ids[attempt % ids.len()];
            let request = json!({ "data": data });
            match self.post(id, "/raft/append", &request).await {
                Ok(reply) if reply.status == 503 => last = format!("node{id}: {reply}"),
                Ok(reply) => return parse_appended(id, &reply).unwrap_or_else(|e| panic!("{e}")),
                Err(transport) => last = transport,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no node of {ids:?} acknowledged {data} within {timeout:?}; last: {last}");
    }

    /// One page of `GET /raft/log?from=..&limit=..` on node `id`.
    pub async fn log_page(&self, id: u64, from: u64, limit: u64) -> Result<LogPage, String> {
        let path = format!("/raft/log?from={from}&limit={limit}");
        let body = self.get_ok(id, &path).await?;
        let entries = body["entries"]
            .as_array()
            .ok_or_else(|| format!("node{id} GET {path}: no entries array: {}", shorten(&body.to_string())))?
            .clone();
        let last_index =
            body["last_index"].as_u64().ok_or_else(|| format!("node{id} GET {path}: no numeric last_index"))?;
        Ok(LogPage { entries, first_index: body["first_index"].as_u64(), last_index })
    }

    /// The entries of node `id`'s log with `from <= index <= to`, by index,
    /// following pages. Indices the node does not have (not yet replicated,
    /// or compacted into a snapshot) are simply absent from the map.
    pub async fn log_range(&self, id: u64, from: u64, to: u64) -> Result<BTreeMap<u64, Value>, String> {
        let mut found = BTreeMap::new();
        let mut next = from;
        while next <= to {
            let page = self.log_page(id, next, LOG_PAGE_ENTRIES_MAX.min(to - next + 1)).await?;
            let mut highest = None;
            for entry in page.entries {
                let index = entry["index"]
                    .as_u64()
                    .ok_or_else(|| format!("node{id} /raft/log: entry without index: {entry}"))?;
                if index >= next {
                    highest = highest.max(Some(index));
                }
                if (from..=to).contains(&index) {
                    found.insert(index, entry);
                }
            }
            next = match (highest, page.first_index) {
                (Some(index), _) => index + 1,
                // `from` lies in the compacted prefix: continue at the log's start.
                (None, Some(first)) if first > next => first,
                (None, _) => break,
            };
            if next > page.last_index {
                break;
            }
        }
        Ok(found)
    }

    /// The entry at `index` in node `id`'s log, if the node has it.
    pub async fn log_entry(&self, id: u64, index: u64) -> Result<Option<Value>, String> {
        Ok(self.log_range(id, index, index).await?.remove(&index))
    }

    /// The members listed by node `id`'s `GET /cluster`, by node number.
    pub async fn members(&self, id: u64) -> Result<BTreeMap<u64, Value>, String> {
        let body = self.get_ok(id, "/cluster").await?;
        members_of(&body).map_err(|e| format!("node{id} GET /cluster: {e}"))
    }
}

/// The `members` of a `/cluster` body, by node number.
pub fn members_of(cluster: &Value) -> Result<BTreeMap<u64, Value>, String> {
    let list = cluster["members"].as_array().ok_or_else(|| format!("no members array in {cluster}"))?;
    let mut members = BTreeMap::new();
    for member in list {
        let id = member["node_id"]
            .as_str()
            .and_then(node_number)
            .ok_or_else(|| format!("member without a nodeN node_id: {member}"))?;
        members.insert(id, member.clone());
    }
    Ok(members)
}

/// `N` of a node name `nodeN`.
pub fn node_number(name: &str) -> Option<u64> {
    name.strip_prefix("node")?.parse().ok()
}

/// Reads a reply into a [`Reply`]; `Err` only for transport failures.
async fn send(id: u64, method: &str, path: &str, request: reqwest::RequestBuilder) -> Result<Reply, String> {
    let request = request.header(reqwest::header::ACCEPT, "application/json");
    let response = request.send().await.map_err(|e| format!("node{id} {method} {path}: {}", describe(&e)))?;
    let status = response.status().as_u16();
    let content_type =
        response.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = response
        .text()
        .await
        .map_err(|e| format!("node{id} {method} {path}: HTTP {status}, body unreadable: {}", describe(&e)))?;
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Reply { status, content_type, body, text })
}

/// The acknowledgement of an append, or why the reply is not one.
fn parse_appended(id: u64, reply: &Reply) -> Result<Appended, String> {
    if !reply.is_success() {
        return Err(format!("node{id} POST /raft/append: {reply}"));
    }
    match (reply.body["index"].as_u64(), reply.body["term"].as_u64()) {
        (Some(index), Some(term)) => Ok(Appended { index, term }),
        _ => Err(format!("node{id} POST /raft/append: no numeric index/term in {reply}")),
    }
}

/// A reqwest error with its kind spelled out (timeouts read differently from
/// refused connections when a node was just killed).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut text = format!("{kind}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// `text` cut to a readable length for failure messages.
pub fn shorten(text: &str) -> String {
    if text.len() <= SHOWN_TEXT_BYTES_MAX {
        return text.to_owned();
    }
    let mut end = SHOWN_TEXT_BYTES_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &text[..end], text.len())
}
