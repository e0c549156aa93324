//! The cache directory's rules (module doc of `dsync_statemachine::cache`
//! and `shared/API.md`, "Coherent cache (MESI)"), one topic per file, each
//! test named after the rule it defends. Every test drives `State::apply`
//! over a `MemStore`, as a replica does, compares whole outputs (the
//! response and the exact list of events) and lines, and checks the
//! directory's invariants (MESI single writer, index consistency) after
//! every entry.
//!
//! - `t10_put`: M for the writer, dirty value, other holders dropped,
//!   versions strictly increasing across keys, `cache.invalidated` always.
//! - `t20_fill`: E alone, S when shared, downgrades from M and E, dirty
//!   kept, idempotent for a holder, stale and unknown versions and keys.
//! - `t30_write_back`: clean after, M to E, the embedded memory value,
//!   clean lines unchanged, stale versions.
//! - `t40_evict`: the holder goes, dirty kept, non-holders, stale versions.
//! - `t50_invalidate_delete`: every holder dropped, the value kept or gone,
//!   memory values removed, a key put again after a delete.
//! - `t60_reset`: every line of a node, no event, the per-entry bound,
//!   stale index entries.
//! - `t70_views`: lines, memory values, paged dirty keys and holdings,
//!   keys with odd bytes.
//! - `t80_robustness`: replay against a discarding store; corrupted stores
//!   never make `apply` panic.

mod common;

mod t10_put;
mod t20_fill;
mod t30_write_back;
mod t40_evict;
mod t50_invalidate_delete;
mod t60_reset;
mod t70_views;
mod t80_robustness;

#[path = "../shared/damage.rs"]
mod damage;
