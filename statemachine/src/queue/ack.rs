//! `ack`: remove processed messages.

use super::keys::Id;
use super::table::Table;
use crate::store::Store;

/// Removes each listed message of `queue`, whatever its state; returns how
/// many were really removed (malformed, unknown and already acknowledged
/// ids count nothing), or `None` if the queue never existed.
pub(crate) fn ack(store: &mut dyn Store, queue: &str, ids: &[String]) -> Option<u64> {
    let mut table = Table::new(store);
    table.meta(queue)?;
    let mut acked = 0;
    for id in ids.iter().filter_map(|text| Id::parse(text)) {
        let Some(message) = table.message(queue, id) else { continue };
        table.remove(queue, id, &message);
        acked += 1;
    }
    if let Some(meta) = table.meta(queue) {
        meta.acked_total = meta.acked_total.saturating_add(acked);
    }
    table.finish();
    Some(acked)
}
