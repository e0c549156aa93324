//! `nack`: give in-flight messages back, at once or after a delay.

use super::keys::Id;
use super::table::Table;
use super::MessageState;
use crate::event::Event;
use crate::lock::Ctx;
use crate::store::Store;

/// Gives back each listed InFlight message of `queue`: Ready at once when
/// `delay_ms == 0` (keeping its sequence number, so it comes before newer
/// messages), else Delayed until `now + delay_ms`; a message that used up
/// its deliveries is dead-lettered instead. Returns how many were in flight
/// (others count nothing), or `None` if the queue never existed.
pub(crate) fn nack(
    store: &mut dyn Store,
    ctx: Ctx,
    queue: &str,
    ids: &[String],
    delay_ms: u64,
    events: &mut Vec<Event>,
) -> Option<u64> {
    let mut table = Table::new(store);
    table.meta(queue)?;
    let then = match delay_ms {
        0 => MessageState::Ready,
        _ => MessageState::Delayed { until_ms: ctx.now_ms.saturating_add(delay_ms) },
    };
    let mut requeued = 0;
    let mut ready = Vec::new();
    for id in ids.iter().filter_map(|text| Id::parse(text)) {
        let Some(message) = table.message(queue, id) else { continue };
        if !matches!(message.state, MessageState::InFlight { .. }) {
            continue;
        }
        requeued += 1;
        match table.give_back(queue, id, message, then.clone()) {
            Some(dead_lettered) => events.push(dead_lettered),
            None if then == MessageState::Ready => ready.push(id.text()),
            None => {}
        }
    }
    table.finish();
    if !ready.is_empty() {
        events.push(Event::QueueReady { queue: queue.to_string(), ids: ready });
    }
    Some(requeued)
}
