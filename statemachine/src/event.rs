//! Events: what applying an entry changed, as plain data.
//!
//! Every replica emits the same events for the same entry. The engine
//! broadcasts them to waiting HTTP handlers (a blocked lock acquire learns it
//! was granted, a node learns its cached copy is invalid) and to `/events`
//! subscribers and Redis pub/sub.

use serde::{Deserialize, Serialize};

use crate::cache::InvalidationReason;
use crate::lock::LockMode;

/// Something that happened when an entry was applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Event {
    /// `owner` now holds `resource` (immediately or after waiting).
    #[serde(rename = "lock.granted")]
    LockGranted {
        /// The lock's name.
        resource: String,
        /// The new holder.
        owner: String,
        /// Shared or exclusive.
        mode: LockMode,
        /// Strictly greater than every earlier grant's token, of any resource.
        fencing_token: u64,
        /// When the lease runs out unless renewed.
        expires_at_ms: u64,
    },
    /// `owner` released `resource` (or was aborted as a deadlock victim).
    #[serde(rename = "lock.released")]
    LockReleased {
        /// The lock's name.
        resource: String,
        /// The former holder.
        owner: String,
    },
    /// `owner`'s lease on `resource` ran out and the cluster released it.
    #[serde(rename = "lock.expired")]
    LockExpired {
        /// The lock's name.
        resource: String,
        /// The former holder.
        owner: String,
    },
    /// `owner` stopped waiting for `resource`: its `wait_ms` ran out.
    #[serde(rename = "lock.wait_timed_out")]
    LockWaitTimedOut {
        /// The lock's name.
        resource: String,
        /// The former waiter.
        owner: String,
    },
    /// A wait closed a cycle in the wait-for graph; `victim` (the youngest
    /// owner in it) was aborted: its pending request on `resource` failed and
    /// every lock it held was released.
    #[serde(rename = "lock.deadlock")]
    LockDeadlock {
        /// The aborted owner.
        victim: String,
        /// The resource the victim was waiting for.
        resource: String,
        /// The owners of the cycle, starting with the waiter whose request closed it.
        cycle: Vec<String>,
    },
    /// Messages entered `queue` (a produce), in batch order.
    #[serde(rename = "queue.produced")]
    QueueProduced {
        /// The queue.
        queue: String,
        /// The new messages' ids.
        ids: Vec<String>,
    },
    /// Messages of `queue` became deliverable again: their visibility ran
    /// out, they were nacked, or their nack delay passed. Consumers waiting
    /// on `queue` should look again.
    #[serde(rename = "queue.ready")]
    QueueReady {
        /// The queue.
        queue: String,
        /// The messages now Ready.
        ids: Vec<String>,
    },
    /// Message `id` used up its deliveries and moved from `queue` to
    /// `dead_letter_queue` (same id), where it is Ready: consumers waiting on
    /// the dead-letter queue should look again.
    #[serde(rename = "queue.dead_lettered")]
    QueueDeadLettered {
        /// The queue it left.
        queue: String,
        /// Its id, the same in both queues.
        id: String,
        /// The queue it entered, `<queue>.dlq`.
        dead_letter_queue: String,
    },
    /// Copies of `key`'s line were dropped (or a put made a new version):
    /// each node in `nodes` must forget its copy, and apps' near-caches
    /// subscribe to learn of new values. Emitted by every put (even with no
    /// one to drop), invalidate and delete.
    #[serde(rename = "cache.invalidated")]
    CacheInvalidated {
        /// The cache key.
        key: String,
        /// The key's version: the new one (put), the current one
        /// (invalidate), the deleted one (delete).
        version: u64,
        /// The nodes that lost their copy, sorted.
        nodes: Vec<u64>,
        /// What dropped them.
        reason: InvalidationReason,
    },
    /// `key`'s dirty value of `version` reached the backing memory: the line
    /// is clean, and an M holder is now E.
    #[serde(rename = "cache.written_back")]
    CacheWrittenBack {
        /// The cache key.
        key: String,
        /// The version written back.
        version: u64,
    },
}
