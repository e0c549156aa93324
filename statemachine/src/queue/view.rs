//! Read-only queries: stats, the next timer, and a paged message listing.

use super::keys::{self, Id};
use super::records::{Message, Meta};
use super::{MessageView, QueueStats};
use crate::store::Store;

/// `queue`'s depths and counters; `None` if it never existed. O(log n).
pub fn stats(store: &dyn Store, queue: &str) -> Option<QueueStats> {
    let meta = Meta::decode(&store.get(&keys::meta(queue))?)?;
    Some(meta.stats(queue))
}

/// Every queue's stats, by name. Reads the meta records only: O(queues).
pub fn all_stats(store: &dyn Store) -> Vec<QueueStats> {
    let (start, end) = keys::meta_range();
    let metas = store.scan(&start, &end, usize::MAX);
    metas.into_iter().filter_map(|(key, value)| Some(Meta::decode(&value)?.stats(&keys::decode_meta(&key)?))).collect()
}

/// The earliest visibility lease or nack delay, so the leader knows when to
/// propose a tick (at or before now when more are due than one entry
/// handles). Reads one key of the timer index; only its deadline is decoded,
/// so even an undecodable timer gets a tick, whose expiry drops it.
pub fn next_deadline_ms(store: &dyn Store) -> Option<u64> {
    let (start, end) = keys::timer_range();
    let first = store.scan(&start, &end, 1);
    first.first().and_then(|(key, _)| keys::timer_deadline(key))
}

/// Up to `limit` messages of `queue` whose id is greater than `after`
/// (from the first with `None`), by id, whatever their state: a page of the
/// queue, for inspection and tests. Undecodable records are skipped; a
/// malformed `after` gives nothing.
pub fn messages(store: &dyn Store, queue: &str, after: Option<&str>, limit: usize) -> Vec<MessageView> {
    let prefix = keys::message_prefix(queue);
    let start = match after {
        None => prefix.clone(),
        // The first key after `after`'s: its own key with a zero byte added.
        Some(after) => match Id::parse(after) {
            Some(id) => [&keys::message(queue, id)[..], &[0]].concat(),
            None => return Vec::new(),
        },
    };
    let records = store.scan(&start, &keys::prefix_end(&prefix), limit);
    records.into_iter().filter_map(|(key, value)| view(&key, &value)).collect()
}

/// The public view of one stored message.
fn view(key: &[u8], value: &[u8]) -> Option<MessageView> {
    let (_, id) = keys::decode_message(key)?;
    let message = Message::decode(value)?;
    Some(MessageView {
        id: id.text(),
        seq: message.seq,
        key: message.key,
        body: message.body,
        delivery_count: message.delivery_count,
        max_deliveries: message.max_deliveries,
        state: message.state,
    })
}
