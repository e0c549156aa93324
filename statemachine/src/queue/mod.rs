//! Durable work queues: FIFO delivery, visibility leases, nack with delay,
//! and dead-letter queues (`shared/API.md`, "Distributed queue").
//!
//! Queue data lives only in the [`Store`]: a backlog may be far larger than
//! memory, so nothing here keeps a queue in memory, and every operation
//! touches only the records it needs (see "Layout" below).
//!
//! Rules:
//! - A queue exists from its first produce and is never deleted. Each message
//!   gets its queue's next sequence number; first deliveries follow sequence
//!   order (FIFO), so messages with the same key keep their order.
//! - A message id is made of the producing entry's log index and the
//!   message's position in the batch ([`message_id`]): unique in the
//!   cluster, and the same on every replica.
//! - A message is `Ready`, `InFlight { consumer, until_ms }` (delivered, not
//!   yet acknowledged) or `Delayed { until_ms }` (nacked with a delay).
//! - Consume takes up to `max` Ready messages in sequence order; each becomes
//!   InFlight until `now + visibility_ms` and its `delivery_count` grows by
//!   one (`consumed_total` counts deliveries).
//! - Ack removes a message in any state (`acked_total`). Ids that are
//!   malformed, unknown or already acknowledged count nothing and are not
//!   errors; a queue that never existed is `QueueNotFound`.
//! - Nack applies to InFlight messages only (others count nothing): with
//!   `delay_ms == 0` the message is Ready at once, keeping its sequence
//!   number (so it comes before newer messages); otherwise it is Delayed
//!   until `now + delay_ms`.
//! - Give-back and dead-lettering: an InFlight message given back (its
//!   visibility ran out, or it was nacked) whose `delivery_count` has reached
//!   its `max_deliveries` is dead-lettered instead: removed from its queue
//!   (`dead_lettered` on the source) and produced into
//!   [`dead_letter_queue`] (`"<queue>.dlq"`, created if needed) with the
//!   same id, key and body and `delivery_count` 0 (event
//!   `QueueDeadLettered`). A message of a queue whose name ends in `.dlq` is
//!   never dead-lettered: it is given back like any other.
//! - Expiry runs at the start of every entry: timers due at `now` (at or
//!   before it) are handled earliest first, at most
//!   [`EXPIRED_PER_ENTRY_MAX`] per entry, so one entry's work is bounded;
//!   the rest stay due, [`next_deadline_ms`] says so, and the leader
//!   proposes more ticks. A due InFlight message goes back to Ready
//!   (`redelivered_total`) or is dead-lettered; a due Delayed message becomes
//!   Ready. Messages that became Ready are announced by `QueueReady`.
//! - `max_deliveries` comes with each produce (the accepting node decides;
//!   the server's default is 5) and is stored with each message.
//!
//! Details the rules leave open, settled here (the tests pin each one):
//! - A produce without messages changes nothing: no queue, no event.
//! - A nack of a message that used up its deliveries dead-letters it (as a
//!   visibility timeout would) and counts it in `requeued`: it was in flight
//!   and is no longer. Without this a consumer that always nacks would get a
//!   poison message forever.
//! - `redelivered_total` counts visibility timeouts that put a message back;
//!   nacks are not counted (the consumer gave it back on purpose).
//! - A dead-lettered message counts in the dead-letter queue's
//!   `produced_total`, so for every queue `produced_total = ready + in_flight
//!   + delayed + acked_total + dead_lettered`. Its `max_deliveries` is kept.
//! - Entering a dead-letter queue emits only `QueueDeadLettered`, which
//!   also tells the dead-letter queue's consumers that a message is ready.
//! - Events of one entry: a produce emits one `QueueProduced` (ids in batch
//!   order); a nack emits its `QueueDeadLettered` events in request order,
//!   then one `QueueReady` (ids in request order) if any became Ready;
//!   expiry emits its `QueueDeadLettered` events in timer order, then one
//!   `QueueReady` per queue, by queue name, ids in timer order.
//! - Timer order is (deadline, queue name, id). Queue names compare as
//!   strings (bytewise UTF-8), ids as (log index, position).
//! - Duplicate ids in one ack or nack act once (the second finds nothing).
//! - `consume` with `max == 0` or on an unknown queue returns nothing;
//!   `now + visibility_ms` and `now + delay_ms` saturate.
//! - Nack does not check which consumer holds a message: the command carries
//!   no consumer.
//!
//! Robustness: the engine may replay old entries against a store that
//! discards writes and reads as empty (to rebuild only the in-memory state),
//! and a store could hold anything. So no queue code panics on store
//! content: a missing or undecodable record is absent, an index entry that
//! disagrees with its message is stale and dropped, and counters saturate.
//! [`check_invariants`] is the full consistency check, for tests.
//!
//! Layout: every key starts with `q` and a table byte; queue names are
//! escaped (`0x00` becomes `0x00 0xFF`) and terminated by `0x00 0x01`, which
//! is unambiguous for any name and keeps name order; integers are
//! big-endian, so byte order is numeric order. A message id is 12 bytes
//! (index, position).
//!
//! | key                                      | value                  |
//! |------------------------------------------|------------------------|
//! | `q m <name>`                             | queue meta (counters)  |
//! | `q g <name> <id>`                        | message record         |
//! | `q r <name> <seq:8>`                     | id (Ready messages)    |
//! | `q t <deadline_ms:8> <name> <id>`        | empty (InFlight/Delayed) |
//!
//! Costs (n = backlog size, k = messages handled): produce O(k log n),
//! consume O(max log n) (one range scan of the ready index), ack and nack
//! O(ids log n), expiry O(due log n) capped per entry, next deadline and
//! stats O(log n), all stats O(queues).
//!
//! Modules (private): `keys` (key encoding), `records` (record encoding),
//! `table` (the working set of one entry: the only code that changes records
//! and keeps the indexes and counters in step), `produce`, `consume`, `ack`,
//! `nack`, `expire`, `view` (read-only queries), `invariants`.

mod ack;
mod consume;
mod expire;
mod invariants;
mod keys;
mod nack;
mod produce;
mod records;
mod table;
mod view;

use serde::{Deserialize, Serialize};

pub use invariants::check_invariants;
pub use view::{all_stats, messages, next_deadline_ms, stats};

pub(crate) use ack::ack;
pub(crate) use consume::consume;
pub(crate) use expire::expire;
pub(crate) use nack::nack;
pub(crate) use produce::produce;

#[cfg(doc)]
use crate::store::Store;

/// Most timers (visibility leases, nack delays) one entry's expiry handles.
/// Bounds the work of any single entry however many timers fall due at once;
/// the rest are handled by the following entries.
pub const EXPIRED_PER_ENTRY_MAX: usize = 256;

/// Suffix of dead-letter queue names.
pub const DEAD_LETTER_SUFFIX: &str = ".dlq";

/// One message of a produce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    /// Ordering key: messages with the same key are delivered in order
    /// (every message of a queue is, the first time).
    pub key: Option<String>,
    /// The message, as compact JSON text (the log's binary encoding cannot
    /// carry self-describing values).
    pub body: String,
}

/// One message handed to a consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The message id, for ack and nack.
    pub id: String,
    /// Its ordering key.
    pub key: Option<String>,
    /// Compact JSON text.
    pub body: String,
    /// How many times it was delivered, this time included.
    pub delivery_count: u32,
}

/// Where a message stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    /// Waiting for a consumer.
    Ready,
    /// Delivered to `consumer`, invisible to others until `until_ms`.
    InFlight {
        /// Who received it.
        consumer: String,
        /// When it is given back unless acknowledged.
        until_ms: u64,
    },
    /// Nacked with a delay: Ready again at `until_ms`.
    Delayed {
        /// When it becomes Ready.
        until_ms: u64,
    },
}

/// A stored message, as [`messages`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    /// Its id.
    pub id: String,
    /// Its sequence number in its queue: first deliveries follow it.
    pub seq: u64,
    /// Its ordering key.
    pub key: Option<String>,
    /// Compact JSON text.
    pub body: String,
    /// Deliveries so far.
    pub delivery_count: u32,
    /// Deliveries after which a give-back dead-letters it.
    pub max_deliveries: u32,
    /// Ready, in flight or delayed.
    pub state: MessageState,
}

/// A queue's depth and counters (`GET /queue/stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStats {
    /// The queue's name.
    pub queue: String,
    /// Messages waiting for a consumer.
    pub ready: u64,
    /// Messages delivered and not yet acknowledged.
    pub in_flight: u64,
    /// Messages nacked with a delay that has not passed.
    pub delayed: u64,
    /// Messages moved to the dead-letter queue.
    pub dead_lettered: u64,
    /// Messages that entered the queue (produced, or dead-lettered into it).
    pub produced_total: u64,
    /// Deliveries (a redelivered message counts again).
    pub consumed_total: u64,
    /// Messages acknowledged (removed).
    pub acked_total: u64,
    /// Messages put back after their visibility ran out.
    pub redelivered_total: u64,
}

/// The id of the message at `position` in the produce at log `index`:
/// 24 lowercase hex digits, the index then the position.
pub fn message_id(index: u64, position: u32) -> String {
    format!("{index:016x}{position:08x}")
}

/// The (index, position) of an id made by [`message_id`]; `None` for
/// anything else (wrong length, upper case, signs), so the server can reject
/// malformed ids.
pub fn parse_message_id(id: &str) -> Option<(u64, u32)> {
    let digits = id.as_bytes();
    if digits.len() != 24 || !digits.iter().all(|d| matches!(d, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let index = u64::from_str_radix(&id[..16], 16).ok()?;
    let position = u32::from_str_radix(&id[16..], 16).ok()?;
    Some((index, position))
}

/// The name of `queue`'s dead-letter queue.
pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}{DEAD_LETTER_SUFFIX}")
}

/// True if `queue` is a dead-letter queue by name: its messages are never
/// dead-lettered again.
pub fn is_dead_letter_queue(queue: &str) -> bool {
    queue.ends_with(DEAD_LETTER_SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sort_like_their_parts() {
        let id = message_id(0x1234, 7);
        assert_eq!(id, "000000000000123400000007");
        assert_eq!(parse_message_id(&id), Some((0x1234, 7)));
        assert_eq!(parse_message_id(&message_id(u64::MAX, u32::MAX)), Some((u64::MAX, u32::MAX)));
        assert!(message_id(1, u32::MAX) < message_id(2, 0));
    }

    #[test]
    fn malformed_ids_do_not_parse() {
        for bad in ["", "00", "00000000000012340000000", "0000000000001234000000070", "00000000000012340000000G"] {
            assert_eq!(parse_message_id(bad), None, "{bad}");
        }
        assert_eq!(parse_message_id("00000000000012340000000A"), None);
        assert_eq!(parse_message_id("+0000000000012340000000a"), None);
        assert_eq!(parse_message_id("ééééééééééé12"), None);
    }

    #[test]
    fn dead_letter_names() {
        assert_eq!(dead_letter_queue("orders"), "orders.dlq");
        assert!(is_dead_letter_queue("orders.dlq"));
        assert!(!is_dead_letter_queue("orders"));
    }
}
