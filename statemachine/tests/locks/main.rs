//! The lock table's rules (module doc of `dsync_statemachine::lock` and
//! `shared/API.md`, "Distributed locks"), one topic per file, each test
//! named after the rule it defends. Every test drives `State::apply`, as a
//! replica does, and compares whole outputs: the response and the exact
//! list of events.
//!
//! - `t10_compatibility`: shared with shared only; exclusive with nothing;
//!   try-lock conflicts.
//! - `t20_fairness`: FIFO grants, no writer starvation, leading shared
//!   waiters granted together.
//! - `t30_upgrade`: shared to exclusive, at once or waiting at the front;
//!   two upgraders deadlock.
//! - `t40_idempotence`: retries return the same grant; duplicates of a
//!   pending request change nothing; releasing what is not held is a no-op.
//! - `t50_leases`: renew, lease expiry, wait timeouts, `next_deadline_ms`.
//! - `t60_fencing`: every grant takes the next token of one cluster-wide
//!   count, so tokens strictly increase across all grants.
//! - `t70_deadlock`: cycles of two and three owners, the youngest aborted,
//!   several cycles closed at once.
//! - `t80_views`: `view`, `held`, `wait_for`, and snapshots.

mod common;

mod t10_compatibility;
mod t20_fairness;
mod t30_upgrade;
mod t40_idempotence;
mod t50_leases;
mod t60_fencing;
mod t70_deadlock;
mod t80_views;
