//! The queue tables' invariants: the full consistency check, for tests. It
//! reads the whole queue keyspace, so nothing calls it while applying.

use std::collections::{BTreeMap, BTreeSet};

use super::keys::{self, Id};
use super::records::{Message, Meta};
use super::{is_dead_letter_queue, MessageState};
use crate::store::Store;

/// What the store holds, decoded.
#[derive(Default)]
struct Tables {
    metas: BTreeMap<String, Meta>,
    messages: BTreeMap<(String, Id), Message>,
    ready: BTreeSet<(String, u64, Id)>,
    timers: BTreeSet<(u64, String, Id)>,
}

/// `Ok` if the queue records in `store` are consistent, else what is broken:
/// - every key of the queue keyspace and every record decodes;
/// - every message belongs to an existing queue, with a sequence number below
///   the queue's next one and unique in the queue;
/// - the ready index holds exactly the Ready messages, under their sequence
///   numbers, and the timer index exactly the InFlight and Delayed ones,
///   under their deadlines;
/// - each queue's depths equal its messages by state, and nothing is lost:
///   `produced_total = ready + in_flight + delayed + acked_total +
///   dead_lettered`; a dead-letter queue dead-letters nothing;
/// - delivery counts: at least one in flight; outside dead-letter queues, a
///   message that is not in flight has deliveries left (or none made yet).
///
/// O(store size).
pub fn check_invariants(store: &dyn Store) -> Result<(), String> {
    let tables = read(store)?;
    let mut depths: BTreeMap<&str, [u64; 3]> = BTreeMap::new();
    let mut seqs = BTreeSet::new();
    for ((queue, id), message) in &tables.messages {
        let name = id.text();
        let meta = tables.metas.get(queue).ok_or(format!("{queue}/{name}: no queue"))?;
        if message.seq >= meta.next_seq || !seqs.insert((queue, message.seq)) {
            return Err(format!("{queue}/{name}: seq {} reused or not issued", message.seq));
        }
        check_deliveries(queue, &name, message)?;
        let slot = match message.state {
            MessageState::Ready => 0,
            MessageState::InFlight { .. } => 1,
            MessageState::Delayed { .. } => 2,
        };
        depths.entry(queue).or_default()[slot] += 1;
    }
    let ready: BTreeSet<_> = tables
        .messages
        .iter()
        .filter(|(_, m)| m.state == MessageState::Ready)
        .map(|((queue, id), m)| (queue.clone(), m.seq, *id))
        .collect();
    if ready != tables.ready {
        return Err("ready index out of step with the Ready messages".into());
    }
    let timers: BTreeSet<_> =
        tables.messages.iter().filter_map(|((queue, id), m)| Some((m.deadline_ms()?, queue.clone(), *id))).collect();
    if timers != tables.timers {
        return Err("timer index out of step with the InFlight and Delayed messages".into());
    }
    for (queue, meta) in &tables.metas {
        check_meta(queue, meta, depths.get(queue.as_str()).copied().unwrap_or_default())?;
    }
    Ok(())
}

/// Decodes every key and record of the queue keyspace.
fn read(store: &dyn Store) -> Result<Tables, String> {
    let (start, end) = keys::space_range();
    let mut tables = Tables::default();
    for (key, value) in store.scan(&start, &end, usize::MAX) {
        let bad = || format!("undecodable entry {key:?}");
        if let Some(queue) = keys::decode_meta(&key) {
            tables.metas.insert(queue, Meta::decode(&value).ok_or_else(bad)?);
        } else if let Some((queue, id)) = keys::decode_message(&key) {
            tables.messages.insert((queue, id), Message::decode(&value).ok_or_else(bad)?);
        } else if let Some((queue, seq)) = keys::decode_ready(&key) {
            tables.ready.insert((queue, seq, Id::from_bytes(&value).ok_or_else(bad)?));
        } else if let Some((deadline_ms, queue, id)) = keys::decode_timer(&key).filter(|_| value.is_empty()) {
            tables.timers.insert((deadline_ms, queue, id));
        } else {
            return Err(bad());
        }
    }
    Ok(tables)
}

/// The delivery-count rules for one message.
fn check_deliveries(queue: &str, name: &str, message: &Message) -> Result<(), String> {
    let (count, max) = (message.delivery_count, message.max_deliveries);
    let ok = match message.state {
        MessageState::InFlight { .. } => count >= 1 && (is_dead_letter_queue(queue) || count <= max.max(1)),
        _ => is_dead_letter_queue(queue) || count == 0 || count < max,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{queue}/{name}: {:?} after {count} of {max} deliveries", message.state))
    }
}

/// One queue's counters against its messages' `[ready, in_flight, delayed]`.
fn check_meta(queue: &str, meta: &Meta, depths: [u64; 3]) -> Result<(), String> {
    if [meta.ready, meta.in_flight, meta.delayed] != depths {
        return Err(format!(
            "{queue}: depths {:?} but messages {depths:?}",
            [meta.ready, meta.in_flight, meta.delayed]
        ));
    }
    let parts = [meta.ready, meta.in_flight, meta.delayed, meta.acked_total, meta.dead_lettered];
    let held: u128 = parts.iter().map(|&n| u128::from(n)).sum();
    if u128::from(meta.produced_total) != held {
        return Err(format!("{queue}: produced {} but holds or let go of {held}", meta.produced_total));
    }
    if is_dead_letter_queue(queue) && meta.dead_lettered != 0 {
        return Err(format!("{queue}: a dead-letter queue dead-lettered {}", meta.dead_lettered));
    }
    Ok(())
}
