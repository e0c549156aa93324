//! This node's copy of cache lines: an LRU of `CACHE_CAPACITY` lines, each
//! with its value, version and MESI state, kept in lockstep with the
//! replicated directory.
//!
//! Lines change only as committed cache commands are applied here
//! ([`LocalLines`] is the engine's [`ApplyObserver`]): a put by this node
//! installs its line as M, a fill by this node installs the fetched value,
//! anyone else's put or an invalidate drops the line, and every other
//! command sets this node's state to what the directory now says. Because
//! this happens before the node reports the entry applied, "node X has
//! applied index i" means "X no longer serves what i invalidated": the
//! guarantee `put` waits for.
//!
//! A fill's value is not in the log (only its version is): the node that
//! fetched it leaves it in `pending` until its fill entry is applied here.
//! Lines pushed out of the LRU go to the eviction worker, which writes back
//! an M line and commits the eviction.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};

use dsync_engine::ApplyObserver;
use dsync_statemachine::cache::{Applied, CacheOutcome, Mesi, NodeId};
use dsync_statemachine::{Command, Request, Response};
use lru::LruCache;
use tokio::sync::mpsc;

use super::stats::CacheMetrics;

/// One cached line of this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The value as compact JSON text.
    pub value: Arc<str>,
    /// The put that wrote it.
    pub version: u64,
    /// This node's MESI state for it.
    pub state: Mesi,
}

/// A line the LRU pushed out, for the eviction worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evicted {
    /// Its key.
    pub key: String,
    /// Its version.
    pub version: u64,
    /// Its state when evicted (M lines are written back).
    pub state: Mesi,
}

/// The LRU and the values of fills in flight, under one lock.
pub struct LocalCache {
    lines: LruCache<String, Line>,
    pending: HashMap<(String, u64), Arc<str>>,
}

impl LocalCache {
    /// An empty cache of `capacity` lines.
    pub fn new(capacity: NonZeroUsize) -> LocalCache {
        LocalCache { lines: LruCache::new(capacity), pending: HashMap::new() }
    }

    /// The line of `key`, marking it most recently used.
    pub fn get(&mut self, key: &str) -> Option<&Line> {
        self.lines.get(key)
    }

    /// The line of `key` without touching its recency.
    pub fn peek(&self, key: &str) -> Option<&Line> {
        self.lines.peek(key)
    }

    /// Installs `line` for `key` as most recently used; returns the line
    /// pushed out to make room, if any (never `key`'s own old line).
    pub fn insert(&mut self, key: String, line: Line) -> Option<(String, Line)> {
        match self.lines.push(key, line) {
            Some((old_key, old)) if !self.lines.contains(&old_key) => Some((old_key, old)),
            _ => None,
        }
    }

    /// Drops `key`'s line, returning it.
    pub fn remove(&mut self, key: &str) -> Option<Line> {
        self.lines.pop(key)
    }

    /// Lines held, most recently used first.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Line)> {
        self.lines.iter()
    }

    /// Number of lines held.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// True when no line is held.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Most lines held at once.
    pub fn capacity(&self) -> usize {
        self.lines.cap().get()
    }

    /// Drops every line (the node's view of the directory was replaced).
    pub fn clear(&mut self) {
        self.lines.clear();
    }
}

/// The node's lines plus what keeps them in step with the directory.
pub struct LocalLines {
    me: NodeId,
    cache: Mutex<LocalCache>,
    metrics: Arc<crate::metrics::Metrics>,
    evicted: mpsc::UnboundedSender<Evicted>,
}

impl LocalLines {
    /// Lines of node `me`; evicted lines are sent to `evicted`.
    pub fn new(
        me: NodeId,
        capacity: NonZeroUsize,
        metrics: Arc<crate::metrics::Metrics>,
        evicted: mpsc::UnboundedSender<Evicted>,
    ) -> LocalLines {
        LocalLines { me, cache: Mutex::new(LocalCache::new(capacity)), metrics, evicted }
    }

    /// Locks the cache. Never held across an await or a call into the node.
    pub fn lock(&self) -> MutexGuard<'_, LocalCache> {
        self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Parks the value of a fill of `key` at `version` until the fill is applied.
    pub fn park(&self, key: &str, version: u64, value: Arc<str>) {
        self.lock().pending.insert((key.to_string(), version), value);
    }

    /// Forgets a parked fill value (once its entry is applied, or failed).
    pub fn unpark(&self, key: &str, version: u64) {
        self.lock().pending.remove(&(key.to_string(), version));
    }

    fn stats(&self) -> &CacheMetrics {
        &self.metrics.cache
    }

    /// Installs a line, counting the transition and handing any line it
    /// pushed out to the eviction worker.
    fn install(&self, cache: &mut LocalCache, key: &str, line: Line) {
        let from = cache.peek(key).map(|l| l.state.as_str());
        self.stats().transition(from, Some(line.state.as_str()));
        if let Some((old_key, old)) = cache.insert(key.to_string(), line) {
            self.stats().evictions.inc();
            self.stats().transition(Some(old.state.as_str()), None);
            let _ = self.evicted.send(Evicted { key: old_key, version: old.version, state: old.state });
        }
    }

    /// Drops `key`'s line, counting the transition; true if there was one.
    fn drop_line(&self, cache: &mut LocalCache, key: &str) -> bool {
        match cache.remove(key) {
            Some(old) => {
                self.stats().transition(Some(old.state.as_str()), None);
                true
            }
            None => false,
        }
    }

    /// Sets this node's line of `applied.key` to what the directory says.
    fn follow(&self, cache: &mut LocalCache, applied: &Applied) {
        let key = applied.key.as_str();
        let state = applied.holders.iter().find(|h| h.node == self.me).map(|h| h.state);
        let Some(state) = state else {
            if self.drop_line(cache, key) {
                self.stats().invalidations_received.inc();
            }
            return;
        };
        let current = cache.peek(key).filter(|l| l.version == applied.version).map(|l| l.value.clone());
        let value = current.or_else(|| cache.pending.get(&(key.to_string(), applied.version)).cloned());
        match value {
            Some(value) => {
                let unchanged = cache.peek(key).is_some_and(|l| l.version == applied.version && l.state == state);
                if !unchanged {
                    self.install(cache, key, Line { value, version: applied.version, state });
                }
            }
            // The directory lists us, but the value is gone (a fill that
            // gave up, a restart): hold nothing; over-listing is harmless.
            None => {
                self.drop_line(cache, key);
            }
        }
    }
}

impl ApplyObserver for LocalLines {
    fn applied(&self, _index: u64, request: &Request, response: &Response) {
        let Response::Cache(outcome) = response else { return };
        let mut cache = self.lock();
        match (&request.command, outcome) {
            (Command::CachePut { node, key, value }, CacheOutcome::Applied(applied)) if *node == self.me => {
                let line = Line { value: Arc::from(value.as_str()), version: applied.version, state: Mesi::M };
                self.install(&mut cache, key, line);
            }
            (Command::CacheReset { node }, _) if *node == self.me => {
                let keys: Vec<String> = cache.iter().map(|(k, _)| k.clone()).collect();
                keys.iter().for_each(|key| {
                    self.drop_line(&mut cache, key);
                });
            }
            (_, CacheOutcome::Applied(applied)) => self.follow(&mut cache, applied),
            _ => {}
        }
        self.stats().lines.set(cache.len() as i64);
    }

    fn state_replaced(&self) {
        let mut cache = self.lock();
        cache.clear();
        self.stats().lines.set(0);
    }
}
