//! The node's side of the coherent cache (the MESI directory itself is
//! replicated state: `dsync_statemachine::cache`).
//!
//! A request's path: `api::cache` -> [`Cache`] -> (local line, or a committed
//! directory command through [`Node::write`]) -> `State::apply` -> this
//! node's [`local::LocalLines`] follow the applied entry -> response.
//!
//! - get: a line held here answers at once while the [`lease::ReadLease`]
//!   holds; otherwise the node confirms with the leader (ReadIndex) and looks
//!   again; on a miss it reads the value from the M holder (`/cache/fetch`,
//!   which writes back first), from the directory's dirty copy, from an E/S
//!   holder or from the [`backing::Backing`] memory, then commits a fill
//!   naming that value's version so this node keeps the line (if a put
//!   overtook the fill, the directory refuses it and the value, still newer
//!   than anything that returned before the get began, is served uncached).
//! - put: a committed entry carrying the value (durable before it returns);
//!   it then waits until every node that held a copy has applied the entry,
//!   or until that node's lease has surely run out.
//! - write-back: a committed `CacheWriteBack` after the value is in Redis
//!   (or, embedded, the entry stores it). Done when an M line is read by a
//!   peer, evicted, invalidated, and periodically by the leader for every
//!   dirty key ([`workers`]), so a crashed M holder loses nothing: its
//!   value is in the directory until written back.
//!
//! Modules: [`local`] (the LRU of lines), [`lease`], [`backing`] (Redis or
//! embedded), [`workers`] (flush, eviction, reset, pub/sub), [`stats`].

pub mod backing;
pub mod lease;
pub mod local;
pub mod stats;
pub mod workers;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dsync_engine::{node_name, Consistency, Node};
use dsync_statemachine::cache::{self as directory, Applied, CacheOutcome, Mesi, NodeId};
use dsync_statemachine::{Command, Response};
use futures_util::future::join_all;
use serde::Deserialize;
use tokio::sync::{mpsc, watch};

use crate::api::error::ApiError;
use crate::metrics::Metrics;
use backing::{Backing, BackingError};
use lease::ReadLease;
use local::{Evicted, LocalLines};

/// How long a peer read may take before the next source is tried.
const PEER_TIMEOUT: Duration = Duration::from_millis(500);

/// Cache settings of one node.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// Lines in this node's LRU.
    pub capacity: NonZeroUsize,
    /// How long one lease confirmation lets the node answer locally.
    pub lease: Duration,
    /// How often the lease is renewed.
    pub renew_every: Duration,
    /// How often the leader writes back dirty lines.
    pub flush_every: Duration,
    /// Redis, if configured.
    pub redis_url: Option<String>,
}

/// What a get answers.
#[derive(Debug, Clone)]
pub struct GetReply {
    /// The value, as JSON text.
    pub value: Arc<str>,
    /// Its version.
    pub version: u64,
    /// This node's state for the line afterwards (`None`: not kept here).
    pub state: Option<Mesi>,
    /// Answered from this node's own line.
    pub hit: bool,
}

/// A line as `/cache/fetch` hands it to a peer.
#[derive(Debug, Clone, Deserialize)]
struct Fetched {
    value: Box<serde_json::value::RawValue>,
    version: u64,
}

/// The node-local half of the cache, shared by handlers and workers.
pub struct Cache {
    node: Arc<Node>,
    lines: Arc<LocalLines>,
    lease: Arc<ReadLease>,
    backing: Arc<Backing>,
    metrics: Arc<Metrics>,
    peers: reqwest::Client,
    /// True once this node's startup reset is committed: before that, the
    /// directory may still list lines this node lost in a restart, and a
    /// line it filled could be dropped by the reset.
    ready: watch::Receiver<bool>,
}

/// The parts that must exist before the node starts (its apply observer).
pub struct Prepared {
    /// The observer to hand to `Node::start`.
    pub lines: Arc<LocalLines>,
    evicted: mpsc::UnboundedReceiver<Evicted>,
    settings: CacheSettings,
    backing: Backing,
}

impl Cache {
    /// Builds the local lines for node `me`, to be passed to `Node::start`.
    pub fn prepare(me: NodeId, settings: CacheSettings, metrics: Arc<Metrics>) -> Result<Prepared, BackingError> {
        let backing = Backing::open(settings.redis_url.as_deref())?;
        let (evicted_tx, evicted) = mpsc::unbounded_channel();
        let lines = Arc::new(LocalLines::new(me, settings.capacity, metrics, evicted_tx));
        Ok(Prepared { lines, evicted, settings, backing })
    }

    /// Starts the cache on a running node: lease renewal, write-back and
    /// eviction workers, the startup reset and (with Redis) event publishing.
    pub fn start(node: Arc<Node>, prepared: Prepared, metrics: Arc<Metrics>) -> Arc<Cache> {
        let Prepared { lines, evicted, settings, backing } = prepared;
        let peers = reqwest::Client::builder().tcp_nodelay(true).build().unwrap_or_default();
        let lease = Arc::new(ReadLease::new(settings.lease));
        let backing = Arc::new(backing);
        let (reset_done, ready) = watch::channel(false);
        let cache = Arc::new(Cache { node: node.clone(), lines, lease: lease.clone(), backing, metrics, peers, ready });
        tokio::spawn(lease::keep_renewing(node, lease, settings.renew_every));
        tokio::spawn(workers::evict(cache.clone(), evicted));
        tokio::spawn(workers::flush_dirty(cache.clone(), settings.flush_every));
        tokio::spawn(workers::reset_on_start(cache.clone(), reset_done));
        if !cache.backing.is_embedded() {
            tokio::spawn(workers::publish_events(cache.clone()));
        }
        cache
    }

    fn me(&self) -> NodeId {
        self.node.id()
    }

    fn stats(&self) -> &stats::CacheMetrics {
        &self.metrics.cache
    }

    /// The node this cache belongs to.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// This node's lines.
    pub fn lines(&self) -> &LocalLines {
        &self.lines
    }

    /// This node's read lease.
    pub fn lease(&self) -> &ReadLease {
        &self.lease
    }

    /// The backing memory.
    pub fn backing(&self) -> &Backing {
        &self.backing
    }

    /// The node's metric families.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// This node's own line of `key`, marked most recently used.
    fn local_hit(&self, key: &str) -> Option<GetReply> {
        let mut cache = self.lines.lock();
        let line = cache.get(key)?;
        self.stats().hits.inc();
        Some(GetReply { value: line.value.clone(), version: line.version, state: Some(line.state), hit: true })
    }

    /// Waits (up to the request timeout) until the startup reset is committed.
    async fn ensure_ready(&self) -> Result<(), ApiError> {
        if *self.ready.borrow() {
            return Ok(());
        }
        let mut ready = self.ready.clone();
        let became_ready = tokio::time::timeout(self.node.request_timeout(), ready.wait_for(|&done| done))
            .await
            .is_ok_and(|waited| waited.is_ok());
        if became_ready {
            Ok(())
        } else {
            Err(ApiError::unavailable("the cache is starting: this node's reset is not committed yet", None))
        }
    }

    /// `GET /cache/get`: never older than a put that returned before it began.
    pub async fn get(&self, key: &str) -> Result<GetReply, ApiError> {
        self.ensure_ready().await?;
        if self.lease.is_valid() {
            if let Some(hit) = self.local_hit(key) {
                return Ok(hit);
            }
        }
        // No lease, or no line: catch up with the leader first. That also
        // renews the lease, so a line held here may answer after all.
        let started = Instant::now();
        self.node.read_barrier(Consistency::Linearizable).await?;
        self.lease.confirmed(started);
        if let Some(hit) = self.local_hit(key) {
            return Ok(hit);
        }
        self.stats().misses.inc();
        // After the barrier this node has applied every put that returned
        // before the get began, so the directory's version is new enough:
        // its value is the answer whether or not the fill below commits.
        let Some(line) = self.node.read_state(|_, store| directory::line(store, key)) else {
            return Err(ApiError::not_found(format!("no cache key {key:?}")));
        };
        let value = self.source(key, &line).await?;
        let state = self.fill(key, line.version, value.clone()).await;
        Ok(GetReply { value, version: line.version, state, hit: false })
    }

    /// Commits this node's fill of `key` at `version` and waits until the
    /// line is installed here; the state it got, or `None` if a put
    /// overtook the fill (or the cluster did not answer): the value is then
    /// served without being cached.
    async fn fill(&self, key: &str, version: u64, value: Arc<str>) -> Option<Mesi> {
        self.lines.park(key, version, value);
        let command = Command::CacheFill { node: self.me(), key: key.to_string(), version };
        let state = match self.node.write(command).await {
            Ok((log_id, Response::Cache(CacheOutcome::Applied(applied)))) => {
                self.node.wait_applied(log_id.index, self.node.request_timeout()).await;
                applied.holders.iter().find(|h| h.node == self.me()).map(|h| h.state)
            }
            Ok(_) => None,
            Err(e) => {
                tracing::debug!(key, error = %e, "fill not committed; serving the value uncached");
                None
            }
        };
        self.lines.unpark(key, version);
        state
    }

    /// Where a miss reads `line`'s value: the M holder (which writes back),
    /// the directory's dirty copy, an E/S holder, or the backing memory.
    async fn source(&self, key: &str, line: &directory::Line) -> Result<Arc<str>, ApiError> {
        let mut holders: Vec<_> = line.holders.iter().filter(|h| h.node != self.me()).collect();
        holders.sort_by_key(|h| h.state); // M, then E, then S
        let (exclusive, shared): (Vec<_>, Vec<_>) = holders.into_iter().partition(|h| h.state != Mesi::S);
        for holder in &exclusive {
            if let Some(value) = self.fetch_from(holder.node, key, line.version).await {
                return Ok(value);
            }
        }
        if let Some(dirty) = &line.dirty {
            return Ok(Arc::from(dirty.as_str()));
        }
        for holder in &shared {
            if let Some(value) = self.fetch_from(holder.node, key, line.version).await {
                return Ok(value);
            }
        }
        match self.backing.read(&self.node, key, self.stats()).await {
            Ok(Some((version, value))) if version == line.version => Ok(Arc::from(value)),
            Ok(found) => Err(ApiError::unavailable(
                format!(
                    "backing memory holds {} of cache key {key:?}, the directory says version {}; retry later",
                    found.map_or("nothing".to_string(), |(v, _)| format!("version {v}")),
                    line.version
                ),
                None,
            )),
            Err(e) => Err(ApiError::unavailable(format!("cannot read cache key {key:?}: {e}"), None)),
        }
    }

    /// A peer read: `node`'s line of `key` at `version`, if it answers.
    async fn fetch_from(&self, node: NodeId, key: &str, version: u64) -> Option<Arc<str>> {
        let addr = self.node.addr_of(node)?;
        let url = format!("{}/cache/fetch", addr.trim_end_matches('/'));
        let query = [("key", key.to_string()), ("version", version.to_string())];
        let reply = self.peers.get(url).query(&query).timeout(PEER_TIMEOUT).send().await.ok()?;
        if !reply.status().is_success() {
            return None;
        }
        let fetched: Fetched = reply.json().await.ok()?;
        self.stats().peer_fetches.inc();
        (fetched.version == version).then(|| Arc::from(fetched.value.get()))
    }

    /// `GET /cache/fetch`: this node's line of `key` for a peer's read miss
    /// (at `version` if given). An M line is written back first; the reader's
    /// fill then makes both copies S.
    pub async fn fetch(&self, key: &str, version: Option<u64>) -> Result<GetReply, ApiError> {
        let line = self.lines.lock().peek(key).cloned();
        let line = line
            .filter(|l| version.is_none_or(|v| v == l.version))
            .ok_or_else(|| ApiError::not_found(format!("node holds no line of {key:?} at that version")))?;
        if line.state == Mesi::M {
            if let Err(e) = self.write_back(key).await {
                // The value is safe in the directory; the flush retries.
                tracing::warn!(key, error = %e.code(), "write-back before a peer read failed");
            }
        }
        Ok(GetReply { value: line.value, version: line.version, state: Some(line.state), hit: true })
    }

    /// `POST /cache/put`: committed, then every other copy is gone.
    pub async fn put(&self, key: &str, value: String) -> Result<Applied, ApiError> {
        self.ensure_ready().await?;
        let command = Command::CachePut { node: self.me(), key: key.to_string(), value };
        let (index, applied) = self.write_applied(command, key).await?;
        self.stats().invalidations_sent.inc_by(applied.dropped.len() as u64);
        self.await_dropped(&applied.dropped, index).await;
        Ok(applied)
    }

    /// `POST /cache/invalidate`: written back if dirty, then every copy dropped.
    pub async fn invalidate(&self, key: &str) -> Result<Applied, ApiError> {
        self.ensure_ready().await?;
        self.node.read_barrier(Consistency::Linearizable).await?;
        if let Err(e) = self.write_back(key).await {
            tracing::warn!(key, error = %e.code(), "write-back before invalidate failed; the flush will retry");
        }
        let (index, applied) = self.write_applied(Command::CacheInvalidate { key: key.to_string() }, key).await?;
        self.stats().invalidations_sent.inc_by(applied.dropped.iter().filter(|&&n| n != self.me()).count() as u64);
        self.await_dropped(&applied.dropped, index).await;
        Ok(applied)
    }

    /// `POST /cache/delete`: every copy dropped, and the key removed from
    /// the directory and the backing memory.
    pub async fn delete(&self, key: &str) -> Result<Applied, ApiError> {
        self.ensure_ready().await?;
        let (index, applied) = self.write_applied(Command::CacheDelete { key: key.to_string() }, key).await?;
        self.stats().invalidations_sent.inc_by(applied.dropped.iter().filter(|&&n| n != self.me()).count() as u64);
        self.await_dropped(&applied.dropped, index).await;
        if let Err(e) = self.backing.delete(key, applied.version, self.stats()).await {
            tracing::warn!(key, error = %e, "backing delete failed; retrying in the background");
            tokio::spawn(workers::retry_delete(
                self.backing.clone(),
                self.metrics.clone(),
                key.to_string(),
                applied.version,
            ));
        }
        Ok(applied)
    }

    /// Commits a cache command about `key`; `not_found` if the key is unknown.
    async fn write_applied(&self, command: Command, key: &str) -> Result<(u64, Applied), ApiError> {
        match self.node.write(command).await? {
            (log_id, Response::Cache(CacheOutcome::Applied(applied))) => Ok((log_id.index, applied)),
            (_, Response::Cache(CacheOutcome::NotFound)) => Err(ApiError::not_found(format!("no cache key {key:?}"))),
            (_, other) => Err(ApiError::internal(format!("cache command answered {other:?}"))),
        }
    }

    /// Writes back `key`'s dirty value, if any: to Redis, then the committed
    /// `CacheWriteBack` (which stores it, for the embedded memory). True if
    /// this call wrote something back.
    pub async fn write_back(&self, key: &str) -> Result<bool, ApiError> {
        let line = self.node.read_state(|_, store| directory::line(store, key));
        let Some(directory::Line { version, dirty: Some(value), .. }) = line else { return Ok(false) };
        self.backing
            .write(key, version, &value, self.stats())
            .await
            .map_err(|e| ApiError::unavailable(e.to_string(), None))?;
        let embedded = self.backing.is_embedded();
        let command = Command::CacheWriteBack { key: key.to_string(), version, embedded };
        let wrote = matches!(self.node.write(command).await?.1, Response::Cache(CacheOutcome::Applied(a)) if !a.dirty);
        if wrote {
            self.stats().writebacks.inc();
        }
        Ok(wrote)
    }

    /// Returns once every node in `dropped` (and this one) has applied the
    /// entry at `index`, or once the lease of any that did not answer has
    /// surely run out (see [`lease`]).
    async fn await_dropped(&self, dropped: &[NodeId], index: u64) {
        let lease = self.lease.duration();
        let deadline = Instant::now() + lease + lease / 4 + Duration::from_millis(10);
        let mut nodes: Vec<NodeId> = dropped.to_vec();
        if !nodes.contains(&self.me()) {
            nodes.push(self.me());
        }
        let acks = nodes.iter().map(|&node| self.applied_on(node, index, deadline));
        let all_acked = join_all(acks).await.into_iter().all(|acked| acked);
        if !all_acked {
            tokio::time::sleep_until(deadline.into()).await;
        }
    }

    /// True once `node` says it applied `index` (before `deadline`).
    async fn applied_on(&self, node: NodeId, index: u64, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        if node == self.me() {
            return self.node.wait_applied(index, left).await;
        }
        let Some(addr) = self.node.addr_of(node) else { return false };
        let url = format!("{}/internal/cache/applied", addr.trim_end_matches('/'));
        let query = [("index", index.to_string()), ("wait_ms", left.as_millis().to_string())];
        match self.peers.get(url).query(&query).timeout(left).send().await {
            Ok(reply) => reply.status().is_success(),
            Err(e) => {
                tracing::debug!(node = %node_name(node), error = %e, "no invalidation ack; waiting out its lease");
                false
            }
        }
    }
}
