//! `produce`: append a batch of messages to a queue, creating it if needed.

use super::keys::Id;
use super::records::Message;
use super::table::Table;
use super::{MessageState, NewMessage};
use crate::event::Event;
use crate::lock::Ctx;
use crate::store::Store;

/// Appends `messages` to `queue` in order, each Ready with the queue's next
/// sequence number and the id of its position in this entry; returns the
/// ids. An empty batch changes nothing (no queue, no event).
pub(crate) fn produce(
    store: &mut dyn Store,
    ctx: Ctx,
    queue: &str,
    messages: &[NewMessage],
    max_deliveries: u32,
    events: &mut Vec<Event>,
) -> Vec<String> {
    if messages.is_empty() {
        return Vec::new();
    }
    let mut table = Table::new(store);
    let mut ids = Vec::with_capacity(messages.len());
    // Zipping with the positions stops at u32::MAX messages instead of
    // overflowing; the server's batch limit is far below.
    for (position, new) in (0..=u32::MAX).zip(messages) {
        let id = Id { index: ctx.index, position };
        let seq = table.enter(queue);
        let message = Message {
            seq,
            delivery_count: 0,
            max_deliveries,
            state: MessageState::Ready,
            key: new.key.clone(),
            body: new.body.clone(),
        };
        table.insert(queue, id, &message);
        ids.push(id.text());
    }
    table.finish();
    events.push(Event::QueueProduced { queue: queue.to_string(), ids: ids.clone() });
    ids
}
