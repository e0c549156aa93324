//! The queue rules (module doc of `dsync_statemachine::queue` and
//! `shared/API.md`, "Distributed queue"), one topic per file, each test named
//! after the rule it defends. Every test drives `State::apply` over a
//! `MemStore`, as a replica does, compares whole outputs (the response and
//! the exact list of events) and stats, and checks the store's invariants
//! after every entry.
//!
//! - `t10_produce_consume`: ids, FIFO first deliveries, per-key order,
//!   leases, unknown queues, `max == 0`, empty produces.
//! - `t20_visibility`: redelivery after the visibility lease, delivery
//!   counts, `redelivered_total`, expiry before the command.
//! - `t30_dead_letter`: dead-lettering after `max_deliveries` (timeout or
//!   nack) into `<queue>.dlq` with the same id; `.dlq` queues never
//!   dead-letter.
//! - `t40_nack`: nack at once and with a delay; only in-flight messages
//!   count; unknown queues.
//! - `t50_ack`: counts, idempotence, unknown and malformed ids, unknown
//!   queues.
//! - `t60_expiry`: the per-entry bound, event order, `next_deadline_ms`.
//! - `t70_stats`: stats through a queue's life, all queues by name, odd
//!   names, paged listings.
//! - `t80_robustness`: replay against a discarding store; corrupted stores
//!   never make `apply` panic.

mod common;

mod t10_produce_consume;
mod t20_visibility;
mod t30_dead_letter;
mod t40_nack;
mod t50_ack;
mod t60_expiry;
mod t70_stats;
mod t80_robustness;

#[path = "../shared/damage.rs"]
mod damage;
