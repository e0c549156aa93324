//! A scripted replica: applies queue commands through `State::apply` (so
//! expiry runs first, as in production) at consecutive log indices over a
//! `MemStore`, checks the queue invariants after every entry, and builds the
//! expected outputs the tests compare whole.

use dsync_statemachine::queue::{self, Delivery, MessageState, MessageView, NewMessage, QueueStats};
use dsync_statemachine::{Command, Event, MemStore, Output, Request, Response, State};

/// The `max_deliveries` a server gives a produce by default.
pub const MAX_DELIVERIES: u32 = 5;

/// One replica, its store and the index of the last entry it applied.
#[derive(Default)]
pub struct Replica {
    /// The in-memory state.
    pub state: State,
    /// The queue records.
    pub store: MemStore,
    /// Log index of the last applied entry (the next one gets `index + 1`).
    pub index: u64,
}

impl Replica {
    /// Applies `command` at the next index, stamped `time_ms`, and checks
    /// the queue invariants afterwards.
    pub fn apply(&mut self, time_ms: u64, command: Command) -> Output {
        self.index += 1;
        let output = self.state.apply(&mut self.store, self.index, &Request { time_ms, command });
        assert_eq!(queue::check_invariants(&self.store), Ok(()), "after entry {}", self.index);
        output
    }

    /// Produces messages without keys, with the default `max_deliveries`.
    pub fn produce(&mut self, time_ms: u64, queue: &str, bodies: &[&str]) -> Output {
        let messages = bodies.iter().map(|body| msg(None, body)).collect();
        self.produce_with(time_ms, queue, messages, MAX_DELIVERIES)
    }

    /// Produces `messages` with `max_deliveries`.
    pub fn produce_with(
        &mut self,
        time_ms: u64,
        queue: &str,
        messages: Vec<NewMessage>,
        max_deliveries: u32,
    ) -> Output {
        self.apply(time_ms, Command::QueueProduce { queue: queue.into(), messages, max_deliveries })
    }

    /// Consumes for `consumer`.
    pub fn consume(&mut self, time_ms: u64, queue: &str, consumer: &str, max: u32, visibility_ms: u64) -> Output {
        let command = Command::QueueConsume { queue: queue.into(), consumer: consumer.into(), max, visibility_ms };
        self.apply(time_ms, command)
    }

    /// Consumes and returns only the ids delivered.
    pub fn consume_ids(&mut self, time_ms: u64, queue: &str, max: u32, visibility_ms: u64) -> Vec<String> {
        match self.consume(time_ms, queue, "w", max, visibility_ms).response {
            Response::QueueConsumed { messages } => messages.into_iter().map(|d| d.id).collect(),
            other => panic!("not a consume: {other:?}"),
        }
    }

    /// Acknowledges `ids`.
    pub fn ack(&mut self, time_ms: u64, queue: &str, ids: &[&str]) -> Output {
        self.apply(time_ms, Command::QueueAck { queue: queue.into(), ids: strings(ids) })
    }

    /// Nacks `ids` with `delay_ms`.
    pub fn nack(&mut self, time_ms: u64, queue: &str, ids: &[&str], delay_ms: u64) -> Output {
        self.apply(time_ms, Command::QueueNack { queue: queue.into(), ids: strings(ids), delay_ms })
    }

    /// A tick: only time passes.
    pub fn tick(&mut self, time_ms: u64) -> Output {
        self.apply(time_ms, Command::Tick)
    }

    /// `queue`'s stats.
    pub fn stats(&self, queue: &str) -> Option<QueueStats> {
        queue::stats(&self.store, queue)
    }

    /// Every message of `queue`, by id.
    pub fn messages(&self, queue: &str) -> Vec<MessageView> {
        queue::messages(&self.store, queue, None, usize::MAX)
    }

    /// `queue`'s messages as (id, state), by id.
    pub fn states(&self, queue: &str) -> Vec<(String, MessageState)> {
        self.messages(queue).into_iter().map(|m| (m.id, m.state)).collect()
    }

    /// When the leader should tick next.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.state.next_deadline_ms(&self.store)
    }
}

/// The id of message `position` of the produce at `index`.
pub fn id(index: u64, position: u32) -> String {
    queue::message_id(index, position)
}

/// A new message.
pub fn msg(key: Option<&str>, body: &str) -> NewMessage {
    NewMessage { key: key.map(String::from), body: body.into() }
}

/// Owned copies of `ids`.
pub fn strings(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

/// An expected output.
pub fn out(response: Response, events: Vec<Event>) -> Output {
    Output { response, events }
}

/// A delivery of a message without a key.
pub fn delivery(id: &str, body: &str, delivery_count: u32) -> Delivery {
    Delivery { id: id.into(), key: None, body: body.into(), delivery_count }
}

/// The response of a consume.
pub fn consumed(messages: Vec<Delivery>) -> Response {
    Response::QueueConsumed { messages }
}

/// The response of a produce.
pub fn produced(ids: &[&str]) -> Response {
    Response::QueueProduced { ids: strings(ids) }
}

/// `queue.produced`.
pub fn ev_produced(queue: &str, ids: &[&str]) -> Event {
    Event::QueueProduced { queue: queue.into(), ids: strings(ids) }
}

/// `queue.ready`.
pub fn ev_ready(queue: &str, ids: &[&str]) -> Event {
    Event::QueueReady { queue: queue.into(), ids: strings(ids) }
}

/// `queue.dead_lettered` from `queue` to `<queue>.dlq`.
pub fn ev_dead_lettered(queue: &str, id: &str) -> Event {
    Event::QueueDeadLettered { queue: queue.into(), id: id.into(), dead_letter_queue: format!("{queue}.dlq") }
}

/// Stats of `queue` with every count zero, to fill in with `..`.
pub fn zero(queue: &str) -> QueueStats {
    QueueStats { queue: queue.into(), ..QueueStats::default() }
}

/// InFlight for `consumer` until `until_ms`.
pub fn in_flight(consumer: &str, until_ms: u64) -> MessageState {
    MessageState::InFlight { consumer: consumer.into(), until_ms }
}
