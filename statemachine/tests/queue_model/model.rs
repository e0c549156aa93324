//! The reference: the queue rules written the obvious way. Each queue is a
//! `Vec` of its messages in arrival order, scanned on every step; expiry
//! gathers every timer of every queue and sorts them. Slow and plainly
//! correct; the real queues must agree with it entry for entry.

use std::collections::{BTreeMap, BTreeSet};

use dsync_statemachine::queue::{
    dead_letter_queue, is_dead_letter_queue, message_id, Delivery, MessageState, MessageView, NewMessage, QueueStats,
    EXPIRED_PER_ENTRY_MAX,
};
use dsync_statemachine::{Command, Event, Response};

/// One queue: its messages in arrival (sequence) order, and its counters
/// (the depths in `stats` are recomputed from the messages).
#[derive(Debug, Default)]
struct Queue {
    messages: Vec<MessageView>,
    next_seq: u64,
    stats: QueueStats,
}

/// The whole reference state.
#[derive(Debug, Default)]
pub struct Model {
    now_ms: u64,
    queues: BTreeMap<String, Queue>,
    /// Every id acknowledged so far.
    pub acked: BTreeSet<String>,
}

/// When `message`'s timer is due, if it has one.
fn deadline(message: &MessageView) -> Option<u64> {
    match message.state {
        MessageState::Ready => None,
        MessageState::InFlight { until_ms, .. } | MessageState::Delayed { until_ms } => Some(until_ms),
    }
}

impl Model {
    /// Applies one entry: time passes first, then the command.
    pub fn apply(&mut self, index: u64, time_ms: u64, command: &Command) -> (Response, Vec<Event>) {
        self.now_ms = self.now_ms.max(time_ms);
        let mut events = Vec::new();
        self.expire(&mut events);
        let response = match command {
            Command::QueueProduce { queue, messages, max_deliveries } => {
                Response::QueueProduced { ids: self.produce(index, queue, messages, *max_deliveries, &mut events) }
            }
            Command::QueueConsume { queue, consumer, max, visibility_ms } => {
                Response::QueueConsumed { messages: self.consume(queue, consumer, *max, *visibility_ms) }
            }
            Command::QueueAck { queue, ids } => match self.queues.contains_key(queue) {
                true => Response::QueueAcked { acked: self.ack(queue, ids) },
                false => Response::QueueNotFound,
            },
            Command::QueueNack { queue, ids, delay_ms } => match self.queues.contains_key(queue) {
                true => Response::QueueRequeued { requeued: self.nack(queue, ids, *delay_ms, &mut events) },
                false => Response::QueueNotFound,
            },
            Command::Tick => Response::Empty,
            other => unreachable!("the model only knows queues: {other:?}"),
        };
        (response, events)
    }

    /// Every queue's stats, by name.
    pub fn all_stats(&self) -> Vec<QueueStats> {
        self.queues.keys().map(|name| self.stats(name)).collect()
    }

    /// One queue's stats, depths counted from its messages.
    fn stats(&self, name: &str) -> QueueStats {
        let queue = &self.queues[name];
        let count = |f: fn(&MessageState) -> bool| queue.messages.iter().filter(|m| f(&m.state)).count() as u64;
        QueueStats {
            queue: name.to_string(),
            ready: count(|s| *s == MessageState::Ready),
            in_flight: count(|s| matches!(s, MessageState::InFlight { .. })),
            delayed: count(|s| matches!(s, MessageState::Delayed { .. })),
            ..queue.stats.clone()
        }
    }

    /// `queue`'s messages, by id.
    pub fn messages(&self, queue: &str) -> Vec<MessageView> {
        let mut messages = self.queues.get(queue).map(|q| q.messages.clone()).unwrap_or_default();
        messages.sort_by(|a, b| a.id.cmp(&b.id));
        messages
    }

    /// The ids of `queue`'s in-flight messages, in arrival order.
    pub fn in_flight(&self, queue: &str) -> Vec<String> {
        let messages = self.queues.get(queue).map(|q| &q.messages[..]).unwrap_or_default();
        messages.iter().filter(|m| matches!(m.state, MessageState::InFlight { .. })).map(|m| m.id.clone()).collect()
    }

    /// The earliest timer of any queue.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.queues.values().flat_map(|q| q.messages.iter().filter_map(deadline)).min()
    }

    /// Time passing: the earliest due timers, at most the bound.
    fn expire(&mut self, events: &mut Vec<Event>) {
        let mut due: Vec<(u64, String, String)> = Vec::new();
        for (name, queue) in &self.queues {
            for message in &queue.messages {
                if let Some(at) = deadline(message).filter(|at| *at <= self.now_ms) {
                    due.push((at, name.clone(), message.id.clone()));
                }
            }
        }
        due.sort();
        due.truncate(EXPIRED_PER_ENTRY_MAX);
        let mut ready: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (_, name, id) in due {
            let position = self.position(&name, &id).expect("a due message is stored");
            let in_flight = matches!(self.queues[&name].messages[position].state, MessageState::InFlight { .. });
            if in_flight {
                if let Some(event) = self.give_back(&name, position, MessageState::Ready) {
                    events.push(event);
                    continue;
                }
                self.queue(&name).stats.redelivered_total += 1;
            } else {
                self.queue(&name).messages[position].state = MessageState::Ready;
            }
            ready.entry(name).or_default().push(id);
        }
        events.extend(ready.into_iter().map(|(queue, ids)| Event::QueueReady { queue, ids }));
    }

    fn produce(
        &mut self,
        index: u64,
        name: &str,
        messages: &[NewMessage],
        max_deliveries: u32,
        events: &mut Vec<Event>,
    ) -> Vec<String> {
        if messages.is_empty() {
            return Vec::new();
        }
        let mut ids = Vec::new();
        for (position, new) in messages.iter().enumerate() {
            let id = message_id(index, position as u32);
            self.arrive(name, &id, new.key.clone(), new.body.clone(), max_deliveries);
            ids.push(id);
        }
        events.push(Event::QueueProduced { queue: name.to_string(), ids: ids.clone() });
        ids
    }

    /// A message enters queue `name` (created if needed), Ready, at the back.
    fn arrive(&mut self, name: &str, id: &str, key: Option<String>, body: String, max_deliveries: u32) {
        let queue = self.queue(name);
        queue.messages.push(MessageView {
            id: id.to_string(),
            seq: queue.next_seq,
            key,
            body,
            delivery_count: 0,
            max_deliveries,
            state: MessageState::Ready,
        });
        queue.next_seq += 1;
        queue.stats.produced_total += 1;
    }

    fn consume(&mut self, name: &str, consumer: &str, max: u32, visibility_ms: u64) -> Vec<Delivery> {
        let until_ms = self.now_ms.saturating_add(visibility_ms);
        let Some(queue) = self.queues.get_mut(name) else { return Vec::new() };
        let mut ready: Vec<&mut MessageView> =
            queue.messages.iter_mut().filter(|m| m.state == MessageState::Ready).collect();
        ready.sort_by_key(|m| m.seq);
        let mut deliveries = Vec::new();
        for message in ready.into_iter().take(max as usize) {
            message.delivery_count += 1;
            message.state = MessageState::InFlight { consumer: consumer.to_string(), until_ms };
            deliveries.push(Delivery {
                id: message.id.clone(),
                key: message.key.clone(),
                body: message.body.clone(),
                delivery_count: message.delivery_count,
            });
        }
        queue.stats.consumed_total += deliveries.len() as u64;
        deliveries
    }

    fn ack(&mut self, name: &str, ids: &[String]) -> u64 {
        let mut acked = 0;
        for id in ids {
            if let Some(position) = self.position(name, id) {
                self.queue(name).messages.remove(position);
                self.queue(name).stats.acked_total += 1;
                self.acked.insert(id.clone());
                acked += 1;
            }
        }
        acked
    }

    fn nack(&mut self, name: &str, ids: &[String], delay_ms: u64, events: &mut Vec<Event>) -> u64 {
        let then = match delay_ms {
            0 => MessageState::Ready,
            _ => MessageState::Delayed { until_ms: self.now_ms.saturating_add(delay_ms) },
        };
        let mut requeued = 0;
        let mut ready = Vec::new();
        for id in ids {
            let Some(position) = self.position(name, id) else { continue };
            if !matches!(self.queues[name].messages[position].state, MessageState::InFlight { .. }) {
                continue;
            }
            requeued += 1;
            match self.give_back(name, position, then.clone()) {
                Some(event) => events.push(event),
                None if then == MessageState::Ready => ready.push(id.clone()),
                None => {}
            }
        }
        if !ready.is_empty() {
            events.push(Event::QueueReady { queue: name.to_string(), ids: ready });
        }
        requeued
    }

    /// An in-flight message given back: dead-lettered if out of deliveries
    /// (outside dead-letter queues), else moved to `then`.
    fn give_back(&mut self, name: &str, position: usize, then: MessageState) -> Option<Event> {
        let message = &mut self.queue(name).messages[position];
        if message.delivery_count < message.max_deliveries || is_dead_letter_queue(name) {
            message.state = then;
            return None;
        }
        let message = self.queue(name).messages.remove(position);
        self.queue(name).stats.dead_lettered += 1;
        let dlq = dead_letter_queue(name);
        self.arrive(&dlq, &message.id, message.key, message.body, message.max_deliveries);
        Some(Event::QueueDeadLettered { queue: name.to_string(), id: message.id, dead_letter_queue: dlq })
    }

    /// Where message `id` stands in queue `name`.
    fn position(&self, name: &str, id: &str) -> Option<usize> {
        self.queues.get(name)?.messages.iter().position(|m| m.id == id)
    }

    /// Queue `name`, created if needed.
    fn queue(&mut self, name: &str) -> &mut Queue {
        self.queues.entry(name.to_string()).or_insert_with(|| Queue {
            stats: QueueStats { queue: name.to_string(), ..QueueStats::default() },
            ..Queue::default()
        })
    }
}
