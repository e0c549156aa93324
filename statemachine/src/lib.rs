//! The unified, deterministic state machine of dsync.
//!
//! Every replica applies the same committed log entries in the same order and
//! must reach the same state, so this crate never does I/O, never reads a
//! clock and never draws a random number. Time arrives inside each entry,
//! stamped by the leader that proposed it ([`Request::time_ms`]).
//!
//! Modules:
//! - [`command`]: what a log entry asks for ([`Request`], [`Command`]) and what
//!   applying it answers ([`Response`]).
//! - [`state`]: the replicated state ([`State`]) and its `apply` function.
//! - [`append`]: opaque application entries of `POST /raft/append`.
//! - [`lock`]: the lock table (shared/exclusive, fair, leased, fenced,
//!   deadlock-detecting).
//! - [`event`]: what an applied entry changed, as plain data.
//!
//! Locks, queues and the cache directory join [`State`] as further modules with
//! the same shape: a `Command` variant, an `apply` arm, a snapshot-able struct.

pub mod append;
pub mod command;
pub mod event;
pub mod lock;
pub mod state;

pub use command::{Command, Request, Response};
pub use event::Event;
pub use state::{Output, SnapshotError, State};
