//! Background work of the cache on each node.
//!
//! - [`evict`]: lines the LRU pushed out: write back an M line, then commit
//!   the eviction so the directory stops listing this node.
//! - [`flush_dirty`]: on the leader, periodically writes back every dirty
//!   key (M lines, and values whose M holder crashed or was evicted while
//!   the backing memory was away), backing off while the backing memory fails.
//! - [`reset_on_start`]: a restarted node holds no lines; it tells the
//!   directory so, instead of being listed as a holder of lines it lost.
//! - [`publish_events`]: with Redis, the leader publishes every committed
//!   event on `dsync.events`, retrying with backoff while Redis is away.
//! - [`retry_delete`]: a backing delete that failed is retried until it lands.

use std::sync::Arc;
use std::time::Duration;

use dsync_engine::Role;
use dsync_statemachine::cache::{self as directory, CacheOutcome, Mesi, RESET_PER_ENTRY_MAX};
use dsync_statemachine::{Command, Response};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, watch};

use super::backing::Backing;
use super::local::Evicted;
use super::Cache;
use crate::api::events::event_json;
use crate::metrics::Metrics;

/// Longest pause between retries while the backing memory or the cluster fails.
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// First pause after a failure.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Dirty keys read from the directory per round of the flush.
const FLUSH_BATCH: usize = 256;
/// Events buffered for Redis while it is away; older ones are dropped beyond.
const PUBLISH_BUFFER: usize = 10_000;

fn next_backoff(backoff: Duration) -> Duration {
    (backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX)
}

/// Handles evicted lines, in order.
pub async fn evict(cache: Arc<Cache>, mut evicted: mpsc::UnboundedReceiver<Evicted>) {
    while let Some(line) = evicted.recv().await {
        if line.state == Mesi::M {
            if let Err(e) = cache.write_back(&line.key).await {
                tracing::warn!(key = %line.key, error = %e.code(), "write-back of an evicted line failed; the flush will retry");
            }
        }
        let command = Command::CacheEvict { node: cache.node().id(), key: line.key.clone(), version: line.version };
        if let Err(e) = cache.node().write(command).await {
            // Still listed as a holder: harmless, a later put just waits for our ack.
            tracing::debug!(key = %line.key, error = %e, "eviction not committed");
        }
    }
}

/// Writes back dirty keys every `every` while this node leads.
pub async fn flush_dirty(cache: Arc<Cache>, every: Duration) {
    let mut pause = every;
    loop {
        tokio::time::sleep(pause).await;
        if cache.node().status().role != Role::Leader {
            pause = every;
            continue;
        }
        pause = match flush_round(&cache).await {
            Ok(()) => every,
            Err(()) => next_backoff(pause.max(BACKOFF_MIN)).max(every),
        };
    }
}

/// One pass over every dirty key; stops at the first failure.
async fn flush_round(cache: &Cache) -> Result<(), ()> {
    let mut after: Option<String> = None;
    loop {
        let keys = cache.node().read_state(|_, store| directory::dirty_keys(store, after.as_deref(), FLUSH_BATCH));
        let Some(last) = keys.last().cloned() else { return Ok(()) };
        for key in &keys {
            if let Err(e) = cache.write_back(key).await {
                tracing::warn!(key, error = %e.code(), "periodic write-back failed; backing off");
                return Err(());
            }
        }
        after = Some(last);
    }
}

/// Commits this node's reset, retrying until the cluster takes it (one
/// entry drops at most `RESET_PER_ENTRY_MAX` lines: repeat while it is full).
/// `done` turns true once it is applied here.
pub async fn reset_on_start(cache: Arc<Cache>, done: watch::Sender<bool>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        match cache.node().write(Command::CacheReset { node: cache.node().id() }).await {
            Ok((log_id, Response::Cache(CacheOutcome::Reset { dropped }))) if dropped < RESET_PER_ENTRY_MAX as u64 => {
                while !cache.node().wait_applied(log_id.index, BACKOFF_MAX).await {}
                done.send_replace(true);
                return;
            }
            Ok(_) => backoff = BACKOFF_MIN,
            Err(e) => {
                tracing::debug!(error = %e, "cache reset not committed yet");
                tokio::time::sleep(backoff).await;
                backoff = next_backoff(backoff);
            }
        }
    }
}

/// Publishes committed events on Redis while this node leads.
pub async fn publish_events(cache: Arc<Cache>) {
    let (queue, mut queued) = mpsc::channel::<String>(PUBLISH_BUFFER);
    let mut entries = cache.node().subscribe();
    let collector = {
        let cache = cache.clone();
        async move {
            loop {
                match entries.recv().await {
                    Ok(record) if cache.node().status().role == Role::Leader => {
                        for event in &record.events {
                            if queue.try_send(event_json(event, record.index).to_string()).is_err() {
                                cache.metrics().cache.events_dropped.inc();
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "event publisher fell behind; some entries' events were not published");
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        }
    };
    tokio::spawn(collector);
    let mut failing = false;
    while let Some(message) = queued.recv().await {
        let mut backoff = BACKOFF_MIN;
        while let Err(e) = cache.backing().publish(&message).await {
            cache.metrics().cache.backing_errors.inc();
            if !failing {
                tracing::warn!(error = %e, "cannot publish events to Redis; retrying with backoff");
                failing = true;
            }
            tokio::time::sleep(backoff).await;
            backoff = next_backoff(backoff);
        }
        if failing {
            tracing::info!("publishing events to Redis again");
            failing = false;
        }
        cache.metrics().cache.events_published.inc();
    }
}

/// Retries a failed backing delete of `key` at `version` until it lands.
pub async fn retry_delete(backing: Arc<Backing>, metrics: Arc<Metrics>, key: String, version: u64) {
    let mut backoff = BACKOFF_MIN;
    loop {
        tokio::time::sleep(backoff).await;
        if backing.delete(&key, version, &metrics.cache).await.is_ok() {
            tracing::info!(key, version, "backing delete done after retries");
            return;
        }
        backoff = next_backoff(backoff);
    }
}
