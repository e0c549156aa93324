//! The queue records one entry works on, and the only code that changes them.
//!
//! A message lives in two places (its record, and the ready index or the
//! timer index, depending on its state) and is counted in a third (its
//! queue's meta), so every change goes through [`Table::insert`],
//! [`Table::set_state`] and [`Table::remove`], which update all three.
//!
//! Meta records are read once per entry and queue, kept here while the entry
//! runs, and written back by [`Table::finish`] only if they changed: a
//! produce of 100 messages writes its queue's meta once.

use std::collections::BTreeMap;

use super::keys::{self, Id};
use super::records::{Message, Meta};
use super::{dead_letter_queue, is_dead_letter_queue, MessageState};
use crate::event::Event;
use crate::store::Store;

/// A meta record as loaded, and as the entry has changed it so far.
struct Loaded {
    stored: Option<Meta>,
    current: Option<Meta>,
}

impl Loaded {
    /// `queue`'s meta as the store has it.
    fn from_store(store: &dyn Store, queue: &str) -> Loaded {
        let stored = store.get(&keys::meta(queue)).and_then(|bytes| Meta::decode(&bytes));
        Loaded { current: stored.clone(), stored }
    }
}

/// The store seen through one entry, with the metas it touched.
pub(super) struct Table<'s> {
    store: &'s mut dyn Store,
    /// By queue name; `BTreeMap` so write-back order is deterministic.
    metas: BTreeMap<String, Loaded>,
}

impl<'s> Table<'s> {
    /// A working set over `store`.
    pub(super) fn new(store: &'s mut dyn Store) -> Table<'s> {
        Table { store, metas: BTreeMap::new() }
    }

    /// The underlying store, for scans.
    pub(super) fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// Writes back every meta record the entry changed.
    pub(super) fn finish(self) {
        for (queue, loaded) in self.metas {
            if let Some(meta) = loaded.current.filter(|meta| loaded.stored.as_ref() != Some(meta)) {
                self.store.put(&keys::meta(&queue), meta.encode());
            }
        }
    }

    /// `queue`'s meta, `None` if the queue does not exist (or its record
    /// does not decode, which counts as the same).
    pub(super) fn meta(&mut self, queue: &str) -> Option<&mut Meta> {
        // Looked up before `entry`, which would allocate the name every time.
        if !self.metas.contains_key(queue) {
            self.metas.insert(queue.to_string(), Loaded::from_store(&*self.store, queue));
        }
        self.metas.get_mut(queue).and_then(|loaded| loaded.current.as_mut())
    }

    /// `queue`'s meta, creating the queue if it does not exist.
    fn meta_or_create(&mut self, queue: &str) -> &mut Meta {
        let store = &*self.store;
        let loaded = self.metas.entry(queue.to_string()).or_insert_with(|| Loaded::from_store(store, queue));
        loaded.current.get_or_insert_with(Meta::default)
    }

    /// Takes the next sequence number of `queue` for a message entering it
    /// (counted in `produced_total`), creating the queue if needed.
    pub(super) fn enter(&mut self, queue: &str) -> u64 {
        let meta = match self.meta(queue) {
            Some(meta) => meta,
            None => self.meta_or_create(queue),
        };
        let seq = meta.next_seq;
        meta.next_seq = seq.saturating_add(1);
        meta.produced_total = meta.produced_total.saturating_add(1);
        seq
    }

    /// Message `id` of `queue`, if stored and decodable.
    pub(super) fn message(&self, queue: &str, id: Id) -> Option<Message> {
        self.store.get(&keys::message(queue, id)).and_then(|bytes| Message::decode(&bytes))
    }

    /// Stores a new message of `queue` (whose meta must exist) with its index
    /// entry, and counts it in its state's depth.
    pub(super) fn insert(&mut self, queue: &str, id: Id, message: &Message) {
        self.store.put(&keys::message(queue, id), message.encode());
        self.index(queue, id, message);
        self.count(queue, &message.state, true);
    }

    /// Moves a stored message to `state`: its index entry and depth move
    /// with it.
    pub(super) fn set_state(&mut self, queue: &str, id: Id, message: &mut Message, state: MessageState) {
        self.unindex(queue, id, message);
        self.count(queue, &message.state, false);
        message.state = state;
        self.store.put(&keys::message(queue, id), message.encode());
        self.index(queue, id, message);
        self.count(queue, &message.state, true);
    }

    /// Deletes a stored message, its index entry and its place in the depths.
    pub(super) fn remove(&mut self, queue: &str, id: Id, message: &Message) {
        self.store.delete(&keys::message(queue, id));
        self.unindex(queue, id, message);
        self.count(queue, &message.state, false);
    }

    /// Deletes an index entry that points at nothing valid.
    pub(super) fn drop_stale(&mut self, key: &[u8]) {
        self.store.delete(key);
    }

    /// Gives back in-flight `message` of `queue`, as a visibility timeout
    /// or a nack does: it is dead-lettered if it has used up its deliveries
    /// (and `queue` is not a dead-letter queue), which returns the
    /// `QueueDeadLettered` event; otherwise it moves to `then`.
    pub(super) fn give_back(&mut self, queue: &str, id: Id, mut message: Message, then: MessageState) -> Option<Event> {
        if message.delivery_count >= message.max_deliveries && !is_dead_letter_queue(queue) {
            return Some(self.dead_letter(queue, id, message));
        }
        self.set_state(queue, id, &mut message, then);
        None
    }

    /// Moves `message` from `queue` into its dead-letter queue, same id,
    /// key and body, delivery count reset, Ready at the back.
    fn dead_letter(&mut self, queue: &str, id: Id, message: Message) -> Event {
        self.remove(queue, id, &message);
        if let Some(meta) = self.meta(queue) {
            meta.dead_lettered = meta.dead_lettered.saturating_add(1);
        }
        let dlq = dead_letter_queue(queue);
        // Ids are unique in the cluster, so the dead-letter queue cannot hold
        // this one already, unless the store is inconsistent: then the stale
        // copy goes, so the indexes stay in step.
        if let Some(stale) = self.message(&dlq, id) {
            self.remove(&dlq, id, &stale);
        }
        let seq = self.enter(&dlq);
        let moved = Message { seq, delivery_count: 0, state: MessageState::Ready, ..message };
        self.insert(&dlq, id, &moved);
        Event::QueueDeadLettered { queue: queue.to_string(), id: id.text(), dead_letter_queue: dlq }
    }

    /// Adds the index entry of `message`'s state.
    fn index(&mut self, queue: &str, id: Id, message: &Message) {
        match message.deadline_ms() {
            None => self.store.put(&keys::ready(queue, message.seq), id.bytes().to_vec()),
            Some(deadline_ms) => self.store.put(&keys::timer(deadline_ms, queue, id), Vec::new()),
        }
    }

    /// Deletes the index entry of `message`'s state.
    fn unindex(&mut self, queue: &str, id: Id, message: &Message) {
        match message.deadline_ms() {
            None => self.store.delete(&keys::ready(queue, message.seq)),
            Some(deadline_ms) => self.store.delete(&keys::timer(deadline_ms, queue, id)),
        }
    }

    /// Adds one to (or takes one from) `queue`'s depth of `state`.
    fn count(&mut self, queue: &str, state: &MessageState, add: bool) {
        if let Some(meta) = self.meta(queue) {
            let depth = meta.depth_mut(state);
            *depth = if add { depth.saturating_add(1) } else { depth.saturating_sub(1) };
        }
    }
}
