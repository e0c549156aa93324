//! Log entry payloads and their results.

use serde::{Deserialize, Serialize};

use crate::lock::{AcquireOutcome, AcquireRequest};

/// One application entry of the Raft log: a command plus the leader's clock.
///
/// The leader stamps `time_ms` when it proposes the entry; followers never
/// consult their own clocks, which keeps every replica's `apply` identical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Milliseconds since the Unix epoch on the proposing leader.
    pub time_ms: u64,
    /// What to do.
    pub command: Command,
}

/// Everything the replicated state can be asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// An opaque application entry (`POST /raft/append`). The JSON is kept as
    /// text because the log's binary encoding cannot carry self-describing
    /// values; it is validated as JSON before it is proposed.
    Append {
        /// Compact JSON text of the appended value.
        data: String,
    },
    /// Acquire a lock, or queue for it (`POST /locks/acquire`).
    LockAcquire(AcquireRequest),
    /// Release a lock (`POST /locks/release`).
    LockRelease {
        /// The lock's name.
        resource: String,
        /// Its holder.
        owner: String,
    },
    /// Extend every lease of an owner (`POST /locks/renew`).
    LockRenew {
        /// The owner whose leases are extended.
        owner: String,
        /// New lease length from now.
        ttl_ms: u64,
    },
    /// Carries only the leader's time: proposed when a lease or a wait is
    /// due, so expiries happen even when no client sends anything.
    Tick,
}

impl Command {
    /// Longest `summary` text, so `/raft/log` stays readable for big entries.
    pub const SUMMARY_CHARS_MAX: usize = 120;

    /// A short human-readable description used by `/raft/log`.
    pub fn summary(&self) -> String {
        let text = match self {
            Command::Append { data } => format!("append {data}"),
            Command::LockAcquire(r) => {
                let mode = match r.mode {
                    crate::lock::LockMode::Shared => "shared",
                    crate::lock::LockMode::Exclusive => "exclusive",
                };
                format!("lock.acquire {} by {} {mode} ttl={}ms wait={}ms", r.resource, r.owner, r.ttl_ms, r.wait_ms)
            }
            Command::LockRelease { resource, owner } => format!("lock.release {resource} by {owner}"),
            Command::LockRenew { owner, ttl_ms } => format!("lock.renew {owner} ttl={ttl_ms}ms"),
            Command::Tick => "tick".to_string(),
        };
        shorten(&text, Self::SUMMARY_CHARS_MAX)
    }
}

/// The result of applying one [`Command`], returned to the proposing client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The entry was applied; carries how many application entries exist now.
    Appended {
        /// Application entries applied so far, this one included.
        total: u64,
    },
    /// The outcome of a [`Command::LockAcquire`].
    LockAcquired(AcquireOutcome),
    /// Whether a [`Command::LockRelease`] released a hold.
    LockReleased {
        /// False if the owner did not hold the lock.
        released: bool,
    },
    /// How many leases a [`Command::LockRenew`] extended.
    LockRenewed {
        /// Number of holds renewed.
        renewed: u64,
    },
    /// Entries without a result (ticks, blank and membership entries).
    Empty,
}

/// Cuts `text` to at most `chars_max` characters, marking the cut with `…`.
fn shorten(text: &str, chars_max: usize) -> String {
    match text.char_indices().nth(chars_max) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_short_for_long_data() {
        let command = Command::Append { data: format!("\"{}\"", "é".repeat(500)) };
        let summary = command.summary();
        assert_eq!(summary.chars().count(), Command::SUMMARY_CHARS_MAX + 1);
        assert!(summary.starts_with("append \"é"));
        assert!(summary.ends_with('…'));
    }

    #[test]
    fn summary_keeps_short_data_whole() {
        let command = Command::Append { data: "{\"a\":1}".into() };
        assert_eq!(command.summary(), "append {\"a\":1}");
    }
}
