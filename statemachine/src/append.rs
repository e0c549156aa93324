//! Opaque application entries (`POST /raft/append`).
//!
//! The entries themselves live in the Raft log, where `/raft/log` shows them;
//! the state machine only counts them, which is enough to prove that every
//! replica applied every entry exactly once (snapshots included).

use serde::{Deserialize, Serialize};

/// What the replicated state remembers of application entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendLog {
    /// Number of application entries applied.
    pub total: u64,
    /// Log index of the latest application entry, if any.
    pub last_index: Option<u64>,
}

impl AppendLog {
    /// Applies one application entry found at log `index`; returns the new total.
    pub fn apply(&mut self, index: u64) -> u64 {
        self.total += 1;
        self.last_index = Some(index);
        self.total
    }
}
