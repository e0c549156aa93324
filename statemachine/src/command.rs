//! Log entry payloads and their results.

use serde::{Deserialize, Serialize};

use crate::cache::CacheOutcome;
use crate::lock::{AcquireOutcome, AcquireRequest};
use crate::queue::{Delivery, NewMessage};

/// One application entry of the Raft log: a command plus the leader's clock.
///
/// The leader stamps `time_ms` when it proposes the entry; followers never
/// consult their own clocks, which keeps every replica's `apply` identical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Milliseconds since the Unix epoch on the proposing leader.
    pub time_ms: u64,
    /// What to do.
    pub command: Command,
}

/// Everything the replicated state can be asked to do.
///
/// Log entries are stored with bincode, which encodes a variant by its
/// position: new variants go last, so entries already on disk keep their
/// meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// An opaque application entry (`POST /raft/append`). The JSON is kept as
    /// text because the log's binary encoding cannot carry self-describing
    /// values; it is validated as JSON before it is proposed.
    Append {
        /// Compact JSON text of the appended value.
        data: String,
    },
    /// Acquire a lock, or queue for it (`POST /locks/acquire`).
    LockAcquire(AcquireRequest),
    /// Release a lock (`POST /locks/release`).
    LockRelease {
        /// The lock's name.
        resource: String,
        /// Its holder.
        owner: String,
    },
    /// Extend every lease of an owner (`POST /locks/renew`).
    LockRenew {
        /// The owner whose leases are extended.
        owner: String,
        /// New lease length from now.
        ttl_ms: u64,
    },
    /// Append messages to a queue, creating it (`POST /queue/produce`).
    QueueProduce {
        /// The queue's name.
        queue: String,
        /// The messages, in order.
        messages: Vec<NewMessage>,
        /// Deliveries after which an unacknowledged message is dead-lettered
        /// (decided by the node that accepted the produce).
        max_deliveries: u32,
    },
    /// Lease the oldest ready messages to a consumer (`POST /queue/consume`).
    QueueConsume {
        /// The queue's name.
        queue: String,
        /// Who receives them.
        consumer: String,
        /// At most this many.
        max: u32,
        /// How long they stay invisible to others unless acknowledged.
        visibility_ms: u64,
    },
    /// Remove processed messages (`POST /queue/ack`).
    QueueAck {
        /// The queue's name.
        queue: String,
        /// Message ids.
        ids: Vec<String>,
    },
    /// Give in-flight messages back (`POST /queue/nack`).
    QueueNack {
        /// The queue's name.
        queue: String,
        /// Message ids.
        ids: Vec<String>,
        /// 0: ready at once; otherwise ready after this long.
        delay_ms: u64,
    },
    /// Carries only the leader's time: proposed when a lease, a wait or a
    /// queue timer is due, so expiries happen even when no client sends
    /// anything.
    Tick,
    /// A node writes a new value of a cache key (`POST /cache/put`): it
    /// becomes the only holder, in M, and the value is dirty.
    CachePut {
        /// The writing node (Raft id).
        node: u64,
        /// The cache key.
        key: String,
        /// The value, as compact JSON text (the log's binary encoding cannot
        /// carry self-describing values).
        value: String,
    },
    /// A node read a line on a miss and caches it (E if alone, else S).
    CacheFill {
        /// The reading node (Raft id).
        node: u64,
        /// The cache key.
        key: String,
        /// The version it read: refused as stale if a put came in between.
        version: u64,
    },
    /// A line's dirty value reached the backing memory (peer read,
    /// eviction, invalidate, or the periodic flush).
    CacheWriteBack {
        /// The cache key.
        key: String,
        /// The version written: refused as stale if a newer put is dirty.
        version: u64,
        /// True when the cluster's own store is the backing memory (no
        /// Redis): the value is then stored by this entry.
        embedded: bool,
    },
    /// A node dropped its copy of a line (LRU eviction).
    CacheEvict {
        /// The evicting node (Raft id).
        node: u64,
        /// The cache key.
        key: String,
        /// The version of its copy: refused as stale if a put came in between.
        version: u64,
    },
    /// Every node drops its copy of a key (`POST /cache/invalidate`).
    CacheInvalidate {
        /// The cache key.
        key: String,
    },
    /// A key is gone from every cache and the backing memory
    /// (`POST /cache/delete`).
    CacheDelete {
        /// The cache key.
        key: String,
    },
    /// A node starts with an empty cache (after a restart) and holds
    /// nothing: the directory forgets its copies.
    CacheReset {
        /// The node (Raft id).
        node: u64,
    },
}

impl Command {
    /// Longest `summary` text, so `/raft/log` stays readable for big entries.
    pub const SUMMARY_CHARS_MAX: usize = 120;

    /// A short human-readable description used by `/raft/log`.
    pub fn summary(&self) -> String {
        let text = match self {
            Command::Append { data } => format!("append {data}"),
            Command::LockAcquire(r) => {
                let mode = match r.mode {
                    crate::lock::LockMode::Shared => "shared",
                    crate::lock::LockMode::Exclusive => "exclusive",
                };
                format!("lock.acquire {} by {} {mode} ttl={}ms wait={}ms", r.resource, r.owner, r.ttl_ms, r.wait_ms)
            }
            Command::LockRelease { resource, owner } => format!("lock.release {resource} by {owner}"),
            Command::LockRenew { owner, ttl_ms } => format!("lock.renew {owner} ttl={ttl_ms}ms"),
            Command::QueueProduce { queue, messages, max_deliveries } => {
                format!("queue.produce {queue} messages={} max_deliveries={max_deliveries}", messages.len())
            }
            Command::QueueConsume { queue, consumer, max, visibility_ms } => {
                format!("queue.consume {queue} by {consumer} max={max} visibility={visibility_ms}ms")
            }
            Command::QueueAck { queue, ids } => format!("queue.ack {queue} ids={}", ids.len()),
            Command::QueueNack { queue, ids, delay_ms } => {
                format!("queue.nack {queue} ids={} delay={delay_ms}ms", ids.len())
            }
            Command::CachePut { node, key, value } => {
                format!("cache.put {key} by {} ({} bytes)", node_name(*node), value.len())
            }
            Command::CacheFill { node, key, version } => {
                format!("cache.fill {key} by {} v={version}", node_name(*node))
            }
            Command::CacheWriteBack { key, version, embedded } => {
                let target = if *embedded { "embedded" } else { "external" };
                format!("cache.write_back {key} v={version} {target}")
            }
            Command::CacheEvict { node, key, version } => {
                format!("cache.evict {key} by {} v={version}", node_name(*node))
            }
            Command::CacheInvalidate { key } => format!("cache.invalidate {key}"),
            Command::CacheDelete { key } => format!("cache.delete {key}"),
            Command::CacheReset { node } => format!("cache.reset {}", node_name(*node)),
            Command::Tick => "tick".to_string(),
        };
        shorten(&text, Self::SUMMARY_CHARS_MAX)
    }
}

/// The result of applying one [`Command`], returned to the proposing client.
///
/// Forwarded between nodes with bincode (variants by position), so new
/// variants go last, as in [`Command`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The entry was applied; carries how many application entries exist now.
    Appended {
        /// Application entries applied so far, this one included.
        total: u64,
    },
    /// The outcome of a [`Command::LockAcquire`].
    LockAcquired(AcquireOutcome),
    /// Whether a [`Command::LockRelease`] released a hold.
    LockReleased {
        /// False if the owner did not hold the lock.
        released: bool,
    },
    /// How many leases a [`Command::LockRenew`] extended.
    LockRenewed {
        /// Number of holds renewed.
        renewed: u64,
    },
    /// The ids of a [`Command::QueueProduce`]'s messages, in order.
    QueueProduced {
        /// One id per message.
        ids: Vec<String>,
    },
    /// The messages a [`Command::QueueConsume`] leased (possibly none).
    QueueConsumed {
        /// In queue order.
        messages: Vec<Delivery>,
    },
    /// How many messages a [`Command::QueueAck`] removed.
    QueueAcked {
        /// Ids that were unknown or already acknowledged do not count.
        acked: u64,
    },
    /// How many in-flight messages a [`Command::QueueNack`] gave back.
    QueueRequeued {
        /// Ids that were not in flight do not count.
        requeued: u64,
    },
    /// An ack or nack named a queue that never existed.
    QueueNotFound,
    /// Entries without a result (ticks, blank and membership entries).
    Empty,
    /// The outcome of a cache command ([`Command::CachePut`] and the rest).
    Cache(CacheOutcome),
}

/// How summaries name a node: as the API does (`node1`).
fn node_name(node: u64) -> String {
    format!("node{node}")
}

/// Cuts `text` to at most `chars_max` characters, marking the cut with `…`.
fn shorten(text: &str, chars_max: usize) -> String {
    match text.char_indices().nth(chars_max) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_short_for_long_data() {
        let command = Command::Append { data: format!("\"{}\"", "é".repeat(500)) };
        let summary = command.summary();
        assert_eq!(summary.chars().count(), Command::SUMMARY_CHARS_MAX + 1);
        assert!(summary.starts_with("append \"é"));
        assert!(summary.ends_with('…'));
    }

    #[test]
    fn queue_summaries_count_instead_of_listing() {
        let messages = vec![NewMessage { key: None, body: "1".into() }; 3];
        let produce = Command::QueueProduce { queue: "orders".into(), messages, max_deliveries: 5 };
        assert_eq!(produce.summary(), "queue.produce orders messages=3 max_deliveries=5");
        let consume =
            Command::QueueConsume { queue: "orders".into(), consumer: "w1".into(), max: 10, visibility_ms: 30_000 };
        assert_eq!(consume.summary(), "queue.consume orders by w1 max=10 visibility=30000ms");
        let ids = vec!["a".to_string(), "b".to_string()];
        assert_eq!(Command::QueueAck { queue: "q".into(), ids: ids.clone() }.summary(), "queue.ack q ids=2");
        assert_eq!(
            Command::QueueNack { queue: "q".into(), ids, delay_ms: 5 }.summary(),
            "queue.nack q ids=2 delay=5ms"
        );
    }

    #[test]
    fn cache_summaries_name_nodes_and_size_values() {
        let put = Command::CachePut { node: 1, key: "k".into(), value: "{\"a\":1}".into() };
        assert_eq!(put.summary(), "cache.put k by node1 (7 bytes)");
        assert_eq!(Command::CacheFill { node: 2, key: "k".into(), version: 3 }.summary(), "cache.fill k by node2 v=3");
        let write_back = |embedded| Command::CacheWriteBack { key: "k".into(), version: 3, embedded }.summary();
        assert_eq!(write_back(true), "cache.write_back k v=3 embedded");
        assert_eq!(write_back(false), "cache.write_back k v=3 external");
        assert_eq!(
            Command::CacheEvict { node: 2, key: "k".into(), version: 3 }.summary(),
            "cache.evict k by node2 v=3"
        );
        assert_eq!(Command::CacheInvalidate { key: "k".into() }.summary(), "cache.invalidate k");
        assert_eq!(Command::CacheDelete { key: "k".into() }.summary(), "cache.delete k");
        assert_eq!(Command::CacheReset { node: 3 }.summary(), "cache.reset node3");
    }

    #[test]
    fn summary_keeps_short_data_whole() {
        let command = Command::Append { data: "{\"a\":1}".into() };
        assert_eq!(command.summary(), "append {\"a\":1}");
    }
}
