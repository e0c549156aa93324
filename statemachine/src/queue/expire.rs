//! `expire`: time passing. Runs before every entry's command, so it must cost
//! nothing when nothing is due: it reads the timer index only up to `now`,
//! and at most [`EXPIRED_PER_ENTRY_MAX`] timers of it.

use std::collections::BTreeMap;

use super::keys;
use super::table::Table;
use super::{MessageState, EXPIRED_PER_ENTRY_MAX};
use crate::event::Event;
use crate::lock::Ctx;
use crate::store::Store;

/// Handles the timers due at `now`, earliest first, at most
/// [`EXPIRED_PER_ENTRY_MAX`]: an InFlight message goes back to Ready
/// (`redelivered_total`) or is dead-lettered; a Delayed one becomes Ready.
/// Emits the `QueueDeadLettered` events in timer order, then one
/// `QueueReady` per queue, by name.
pub(crate) fn expire(store: &mut dyn Store, ctx: Ctx, events: &mut Vec<Event>) {
    let (start, end) = keys::timers_due(ctx.now_ms);
    let due = store.scan(&start, &end, EXPIRED_PER_ENTRY_MAX);
    if due.is_empty() {
        return;
    }
    let mut table = Table::new(store);
    let mut ready: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, _) in due {
        // The timer is spent whatever it points at.
        table.drop_stale(&key);
        let Some((deadline_ms, queue, id)) = keys::decode_timer(&key) else { continue };
        // A timer must match its message's state and deadline; anything else
        // is stale (only in an inconsistent store).
        let Some(message) = table.message(&queue, id).filter(|m| m.deadline_ms() == Some(deadline_ms)) else {
            continue;
        };
        let back_in_queue = match message.state {
            MessageState::InFlight { .. } => match table.give_back(&queue, id, message, MessageState::Ready) {
                Some(dead_lettered) => {
                    events.push(dead_lettered);
                    false
                }
                None => {
                    if let Some(meta) = table.meta(&queue) {
                        meta.redelivered_total = meta.redelivered_total.saturating_add(1);
                    }
                    true
                }
            },
            _ => {
                let mut message = message;
                table.set_state(&queue, id, &mut message, MessageState::Ready);
                true
            }
        };
        if back_in_queue {
            ready.entry(queue).or_default().push(id.text());
        }
    }
    table.finish();
    events.extend(ready.into_iter().map(|(queue, ids)| Event::QueueReady { queue, ids }));
}
