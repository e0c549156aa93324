//! The directory of the coherent cache (`shared/API.md`, "Coherent cache
//! (MESI)"): which node holds which key's line in which MESI state, the
//! key's latest version, and its value while that value is not yet written
//! back to the backing memory.
//!
//! Every node keeps the values themselves in its own LRU cache; the
//! directory is what the cluster agrees on, so every transition is a log
//! entry and every replica sees the same holders. The server turns a get
//! miss into a [`Command::CacheFill`], a put into a [`Command::CachePut`],
//! and so on; the events tell the other nodes to drop their copies.
//!
//! Model: a key's record has its latest `version`, `dirty` (the value of
//! the latest put, compact JSON text, while it is not yet written back) and
//! its holders, each in M, E or S (a node that is not a holder is in I).
//! Every holder holds the current version: a put drops every other holder.
//!
//! Invariant: at most one holder is M or E, and if one is, it is the only
//! holder; a holder in M implies the record is dirty.
//!
//! Rules (one command per file):
//! - Put by node N: the directory's counter ([`CacheDirectory::last_version`])
//!   moves on by one and the key takes it as its version, so versions
//!   strictly increase across all keys; the value becomes the dirty value;
//!   every other holder is dropped; N becomes M. Always emits
//!   `CacheInvalidated { reason: Put }` (even if nobody was dropped: apps'
//!   near-caches subscribe to it).
//! - Fill by N of version v (a read miss): an unknown key is `NotFound`, a
//!   version other than the key's current one is `Stale`. If N holds the
//!   line already, nothing changes. Otherwise every other M or E holder
//!   becomes S, and N becomes E if it is alone, else S. `dirty` is
//!   untouched: a line downgraded from M stays dirty until written back.
//! - Write-back of version v: `NotFound` / `Stale` as for fill. If the
//!   record is dirty: with `embedded` the value is stored as the embedded
//!   backing memory's value of the key (the cluster's own store stands in
//!   for Redis); `dirty` is cleared; an M holder becomes E; event
//!   `CacheWrittenBack`. If it is clean, nothing changes and nothing is
//!   emitted.
//! - Evict by N of version v: `NotFound` / `Stale` as for fill; N stops
//!   holding the line if it did. `dirty` is untouched (the server writes
//!   back first).
//! - Invalidate: `NotFound` for an unknown key; every holder is dropped;
//!   `dirty` is untouched (the server writes back first, and the value of a
//!   put racing with the invalidate stays dirty and is flushed later: never
//!   lost). Always emits `CacheInvalidated { reason: Invalidate }`.
//! - Delete: `NotFound` for an unknown key; the record, its dirty value, its
//!   index entries and its embedded memory value are removed. Emits
//!   `CacheInvalidated { reason: Delete }`.
//! - Reset of node N (the node restarted with an empty cache): N stops
//!   holding every line it held, at most [`RESET_PER_ENTRY_MAX`] per entry.
//!   No event: it is the node's own housekeeping, nobody else's copy
//!   changes.
//!
//! Details the rules leave open, settled here (the tests pin each one):
//! - `Applied` describes the record after the command: `holders` sorted by
//!   node, `dropped` the nodes that stopped holding the line in this
//!   command, sorted. A delete answers the deleted record's version, no
//!   holders and `dirty: false`.
//! - A put by the line's only holder drops nobody (N is re-marked M).
//! - Stale is checked before "already a holder": an evict of an old version
//!   is refused even by a holder (its copy is of the current version, so the
//!   evict is about a copy it no longer has).
//! - `CacheInvalidated::version` is the record's version: the new one for a
//!   put, the current one for an invalidate, the deleted one for a delete.
//! - A delete also removes an embedded memory value whose record is missing
//!   (only a damaged store has one), even though it answers `NotFound`.
//! - Reset answers how many lines N really stopped holding; index entries
//!   that point at no record holding N are stale and are dropped without
//!   counting. When it stops at the per-entry bound, [`held_by`] is not
//!   empty afterwards and the server proposes another reset.
//!
//! Robustness: the engine may replay old entries against a store that
//! discards writes and reads as empty (to rebuild only the in-memory state,
//! here the version counter, which moves on every put whatever the store
//! says), and a store could hold anything. No cache code panics on store
//! content: a missing or undecodable record is absent (the key is
//! `NotFound`, a put starts it afresh). [`check_invariants`] is the full
//! consistency check, for tests.
//!
//! Layout: every key starts with `c` and a table byte; keys are escaped and
//! terminated as queue names are (`0x00` becomes `0x00 0xFF`, then
//! `0x00 0x01`), which is unambiguous for any key and keeps key order; node
//! ids are big-endian, so the holder index groups by node.
//!
//! | key                         | value                                  |
//! |-----------------------------|----------------------------------------|
//! | `c r <key>`                 | record: version, dirty value, holders  |
//! | `c h <node:8> <key>`        | empty (holder index: lines by node)    |
//! | `c d <key>`                 | empty (dirty index: the flusher's list) |
//! | `c m <key>`                 | embedded memory value: version, JSON   |
//!
//! Costs (h = the line's holders): every command reads one record and
//! writes at most the record, its changed index entries and, for a
//! write-back, the memory value: O(h log n). Reset is O(lines held log n),
//! capped per entry. [`dirty_keys`] and [`held_by`] are range scans.
//!
//! Modules (private): `keys` (key encoding), `records` (record encoding),
//! `table` (a key's record as one entry changes it: the only code that
//! writes records and keeps the indexes in step), `put`, `fill`,
//! `write_back`, `evict`, `invalidate`, `delete`, `reset`, `view`
//! (read-only queries), `invariants`.

mod delete;
mod evict;
mod fill;
mod invalidate;
mod invariants;
mod keys;
mod put;
mod records;
mod reset;
mod table;
mod view;
mod write_back;

use serde::{Deserialize, Serialize};

pub use invariants::check_invariants;
pub use view::{dirty_keys, held_by, line, memory_value};

pub(crate) use delete::delete;
pub(crate) use evict::evict;
pub(crate) use fill::fill;
pub(crate) use invalidate::invalidate;
pub(crate) use put::put;
pub(crate) use reset::reset;
pub(crate) use write_back::write_back;

#[cfg(doc)]
use crate::command::Command;

/// A node of the cluster, by its Raft id: the holders of a line are nodes.
pub type NodeId = u64;

/// Most holder-index entries one [`Command::CacheReset`] handles. Bounds
/// the work of a single entry however many lines a node held (a node that
/// could not evict may hold more than its capacity); the server proposes
/// another reset while [`held_by`] still lists some.
pub const RESET_PER_ENTRY_MAX: usize = 1024;

/// MESI state of one node's copy of a line. A node that is not a holder is
/// in I (invalid), which is why there is no `I` here: the directory stores
/// holders only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Mesi {
    /// Modified: the only copy, newer than the backing memory (dirty).
    M,
    /// Exclusive: the only copy, and the backing memory has it (or will
    /// from the flusher, if the line was dirty when the node filled it).
    E,
    /// Shared: one of possibly several copies, all of the current version.
    S,
}

impl Mesi {
    /// The one-letter name the API shows (`"M"`, `"E"`, `"S"`), without
    /// going through serde.
    pub fn as_str(self) -> &'static str {
        match self {
            Mesi::M => "M",
            Mesi::E => "E",
            Mesi::S => "S",
        }
    }
}

/// One holder of a line: which node, in which state. The wire form of the
/// holder map, so responses and views list holders in a stable order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The node holding a copy.
    pub node: NodeId,
    /// Its copy's state.
    pub state: Mesi,
}

/// A key's directory record as readers see it ([`line()`]): what the server
/// needs to answer a get (version, dirty value) and to pick a peer to read
/// from (holders).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// The version of the key's latest put.
    pub version: u64,
    /// The latest put's value (compact JSON text) while it is not yet
    /// written back to the backing memory.
    pub dirty: Option<String>,
    /// The nodes holding a copy, sorted by node.
    pub holders: Vec<Holder>,
}

/// What a cache command did to its key: enough for the proposing node to
/// update its own cache and answer its client without reading the directory
/// again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The key.
    pub key: String,
    /// The key's version after the command (for a delete, the deleted one).
    pub version: u64,
    /// Whether the key's latest value is still to be written back.
    pub dirty: bool,
    /// The holders after the command, sorted by node.
    pub holders: Vec<Holder>,
    /// The nodes that lost their copy in this command, sorted.
    pub dropped: Vec<NodeId>,
}

/// The outcome of a cache command, returned to the proposing node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CacheOutcome {
    /// The command was applied (possibly changing nothing).
    Applied(Applied),
    /// A fill, write-back or evict named a version that is not the key's
    /// current one: the proposer's view is out of date, nothing changed.
    Stale {
        /// The key's current version.
        version: u64,
    },
    /// The key is not in the directory (never put, or deleted).
    NotFound,
    /// A reset removed the node from this many lines.
    Reset {
        /// Lines the node stopped holding.
        dropped: u64,
    },
}

/// Why copies of a line were dropped (`cache.invalidated`), so subscribers
/// can tell a new value from a removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvalidationReason {
    /// A put made a new version: other copies are out of date.
    Put,
    /// An explicit invalidate: every copy was dropped, the value stays.
    Invalidate,
    /// The key was deleted.
    Delete,
}

/// The in-memory part of the directory, which travels in [`State`]
/// snapshots. Only the version counter is here: it must move on every put
/// even when the store discards writes (replay), so that versions stay
/// strictly increasing and identical on every replica. Everything else is
/// in the [`Store`].
///
/// [`State`]: crate::State
/// [`Store`]: crate::Store
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheDirectory {
    /// The version the latest put took (0 before the first put).
    pub last_version: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_have_one_letter_names_in_serde_too() {
        for state in [Mesi::M, Mesi::E, Mesi::S] {
            assert_eq!(serde_json::to_string(&state).unwrap(), format!("\"{}\"", state.as_str()));
        }
        assert_eq!(serde_json::to_string(&InvalidationReason::Invalidate).unwrap(), "\"invalidate\"");
    }
}
