//! The backing memory behind every node's cache: Redis when `REDIS_URL` is
//! set, otherwise the cluster's own replicated store.
//!
//! Redis layout: key `dsync:cache:<key>` holds the string
//! `{"version":N,"value":<JSON>}`. Writes and deletes are conditional on the
//! version (a Lua script compares it), so a slow or retried write-back never
//! replaces a newer value, and a retried delete never removes a value put
//! after it. Events go to the channel `dsync.events`.
//!
//! The embedded memory needs no calls here: an embedded write-back is the
//! committed `CacheWriteBack` entry itself, which the state machine applies
//! by storing the value (`dsync_statemachine::cache::memory_value`).

use std::time::{Duration, Instant};

use dsync_engine::Node;
use dsync_statemachine::cache;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

use super::stats::CacheMetrics;

/// Prefix of every cache key in Redis.
pub const REDIS_PREFIX: &str = "dsync:cache:";
/// Channel every committed event is published on.
pub const EVENTS_CHANNEL: &str = "dsync.events";
/// How long one Redis call may take before it counts as failed.
const REDIS_TIMEOUT: Duration = Duration::from_millis(500);

/// Sets the key unless it already holds this version or a newer one.
const WRITE_SCRIPT: &str = r#"
local current = redis.call('GET', KEYS[1])
if current then
  local version = tonumber(string.match(current, '^{"version":(%d+)'))
  if version and version >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"#;

/// Deletes the key unless it holds a version newer than the deleted one.
const DELETE_SCRIPT: &str = r#"
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local version = tonumber(string.match(current, '^{"version":(%d+)'))
if version and version > tonumber(ARGV[1]) then return 0 end
return redis.call('DEL', KEYS[1])
"#;

/// A backing-memory call that did not succeed.
#[derive(Debug, thiserror::Error)]
#[error("backing memory: {0}")]
pub struct BackingError(String);

/// Where clean values live.
pub enum Backing {
    /// The replicated store (no other service).
    Embedded,
    /// A Redis server.
    Redis(RedisMemory),
}

/// A Redis connection that reconnects by itself.
pub struct RedisMemory {
    connection: ConnectionManager,
    write: Script,
    delete: Script,
}

impl Backing {
    /// Redis at `url` if given, else the embedded memory. Connects lazily:
    /// a Redis that is down at startup does not stop the node.
    pub fn open(url: Option<&str>) -> Result<Backing, BackingError> {
        let Some(url) = url else { return Ok(Backing::Embedded) };
        let client = redis::Client::open(url).map_err(|e| BackingError(format!("REDIS_URL {url:?}: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let connection =
            ConnectionManager::new_lazy_with_config(client, config).map_err(|e| BackingError(e.to_string()))?;
        Ok(Backing::Redis(RedisMemory {
            connection,
            write: Script::new(WRITE_SCRIPT),
            delete: Script::new(DELETE_SCRIPT),
        }))
    }

    /// `"redis"` or `"embedded"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Backing::Embedded => "embedded",
            Backing::Redis(_) => "redis",
        }
    }

    /// True for the replicated store.
    pub fn is_embedded(&self) -> bool {
        matches!(self, Backing::Embedded)
    }

    /// The stored (version, JSON value) of `key`, if any.
    pub async fn read(
        &self,
        node: &Node,
        key: &str,
        stats: &CacheMetrics,
    ) -> Result<Option<(u64, String)>, BackingError> {
        stats.backing_reads.inc();
        match self {
            Backing::Embedded => Ok(node.read_state(|_, store| cache::memory_value(store, key))),
            Backing::Redis(redis) => {
                let started = Instant::now();
                let mut connection = redis.connection.clone();
                let read: Result<Option<String>, _> = connection.get(redis_key(key)).await;
                stats.backing_call("read", started.elapsed(), read.is_ok());
                match read.map_err(|e| BackingError(e.to_string()))? {
                    None => Ok(None),
                    Some(stored) => decode(&stored).map(Some),
                }
            }
        }
    }

    /// Stores `value` at `version` in Redis (no-op for the embedded memory,
    /// whose write-back is the committed entry).
    pub async fn write(&self, key: &str, version: u64, value: &str, stats: &CacheMetrics) -> Result<(), BackingError> {
        let Backing::Redis(redis) = self else { return Ok(()) };
        let started = Instant::now();
        let mut connection = redis.connection.clone();
        let stored = format!("{{\"version\":{version},\"value\":{value}}}");
        let written: Result<i64, _> =
            redis.write.key(redis_key(key)).arg(version).arg(stored).invoke_async(&mut connection).await;
        stats.backing_call("write", started.elapsed(), written.is_ok());
        written.map(|_| ()).map_err(|e| BackingError(e.to_string()))
    }

    /// Removes `key` from Redis unless a newer version is there.
    pub async fn delete(&self, key: &str, version: u64, stats: &CacheMetrics) -> Result<(), BackingError> {
        let Backing::Redis(redis) = self else { return Ok(()) };
        let started = Instant::now();
        let mut connection = redis.connection.clone();
        let deleted: Result<i64, _> = redis.delete.key(redis_key(key)).arg(version).invoke_async(&mut connection).await;
        stats.backing_call("delete", started.elapsed(), deleted.is_ok());
        deleted.map(|_| ()).map_err(|e| BackingError(e.to_string()))
    }

    /// Publishes `message` on [`EVENTS_CHANNEL`] (no-op without Redis).
    pub async fn publish(&self, message: &str) -> Result<(), BackingError> {
        let Backing::Redis(redis) = self else { return Ok(()) };
        let mut connection = redis.connection.clone();
        let published: Result<i64, _> = connection.publish(EVENTS_CHANNEL, message).await;
        published.map(|_| ()).map_err(|e| BackingError(e.to_string()))
    }
}

fn redis_key(key: &str) -> String {
    format!("{REDIS_PREFIX}{key}")
}

/// Splits a stored `{"version":N,"value":...}` string.
fn decode(stored: &str) -> Result<(u64, String), BackingError> {
    #[derive(serde::Deserialize)]
    struct Stored<'a> {
        version: u64,
        #[serde(borrow)]
        value: &'a serde_json::value::RawValue,
    }
    let parsed: Stored = serde_json::from_str(stored)
        .map_err(|e| BackingError(format!("undecodable value in Redis ({e}); was it written by dsync?")))?;
    Ok((parsed.version, parsed.value.get().to_string()))
}
