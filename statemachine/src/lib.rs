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
//! - [`queue`]: durable work queues (FIFO, visibility leases, nack, delays,
//!   dead-letter queues). Their data lives only in the [`Store`].
//! - [`cache`]: the MESI directory of the coherent cache (which node holds
//!   which key in which state, versions, values not yet written back, the
//!   embedded backing memory). Its data lives in the [`Store`] too, but for
//!   the version counter.
//! - [`store`]: the ordered key-value [`Store`] the state machine reads and
//!   writes for state that may not fit in memory, and [`MemStore`].
//! - [`event`]: what an applied entry changed, as plain data.
//!
//! Two kinds of state: [`State`] is in memory and travels whole in snapshots
//! (locks, application entries, the clock, the cache's version counter);
//! queue data and the cache directory live in the [`Store`], which the
//! engine persists and snapshots itself. Both change only through
//! [`State::apply`].
//!
//! The lock, queue and cache modules share one shape: `Command` variants
//! whose `apply` arms dispatch to one file per command, their records,
//! `Event` variants and an invariant check. The two store-backed ones share
//! their key and record encoding helpers (the private `codec` module).

#![warn(missing_docs)]

pub mod append;
pub mod cache;
mod codec;
pub mod command;
pub mod event;
pub mod lock;
pub mod queue;
pub mod state;
pub mod store;

pub use command::{Command, Request, Response};
pub use event::Event;
pub use state::{Output, SnapshotError, State};
pub use store::{MemStore, Store};
