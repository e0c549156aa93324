//! `consume`: lease the oldest Ready messages of a queue to a consumer.

use super::keys::{self, Id};
use super::table::Table;
use super::{Delivery, MessageState};
use crate::lock::Ctx;
use crate::store::Store;

/// Takes up to `max` Ready messages of `queue` in sequence order; each
/// becomes InFlight for `consumer` until `now + visibility_ms`, its delivery
/// count one higher. Reads only the front of the ready index: O(max log n).
/// An unknown queue or `max == 0` gives nothing.
pub(crate) fn consume(
    store: &mut dyn Store,
    ctx: Ctx,
    queue: &str,
    consumer: &str,
    max: u32,
    visibility_ms: u64,
) -> Vec<Delivery> {
    let mut table = Table::new(store);
    if max == 0 || table.meta(queue).is_none() {
        return Vec::new();
    }
    let prefix = keys::ready_prefix(queue);
    let front = table.store().scan(&prefix, &keys::prefix_end(&prefix), usize::try_from(max).unwrap_or(usize::MAX));
    let until_ms = ctx.now_ms.saturating_add(visibility_ms);
    let mut deliveries = Vec::with_capacity(front.len());
    for (key, value) in front {
        let seq = keys::decode_ready(&key).map(|(_, seq)| seq);
        let id = Id::from_bytes(&value);
        let found = id.and_then(|id| table.message(queue, id).map(|message| (id, message)));
        // The index entry must point at a Ready message with its sequence
        // number; anything else is stale (only in an inconsistent store).
        let Some((id, mut message)) = found.filter(|(_, m)| m.state == MessageState::Ready && Some(m.seq) == seq)
        else {
            table.drop_stale(&key);
            continue;
        };
        message.delivery_count = message.delivery_count.saturating_add(1);
        table.set_state(queue, id, &mut message, MessageState::InFlight { consumer: consumer.to_string(), until_ms });
        deliveries.push(Delivery {
            id: id.text(),
            key: message.key,
            body: message.body,
            delivery_count: message.delivery_count,
        });
    }
    if let Some(meta) = table.meta(queue) {
        meta.consumed_total = meta.consumed_total.saturating_add(deliveries.len() as u64);
    }
    table.finish();
    deliveries
}
