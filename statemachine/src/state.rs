//! The replicated state and its single entry point, [`State::apply`].
//!
//! State lives in two places. [`State`] itself (the clock, application
//! entries, locks, the cache's version counter) is in memory and travels
//! whole in snapshots ([`State::to_snapshot`]). Queue data and the cache
//! directory live only in the [`Store`] passed to [`State::apply`], which
//! the engine persists and snapshots itself.

use serde::{Deserialize, Serialize};

use crate::append::AppendLog;
use crate::cache::{self, CacheDirectory};
use crate::command::{Command, Request, Response};
use crate::event::Event;
use crate::lock::{Ctx, LockTable};
use crate::queue;
use crate::store::Store;

/// Version tag in front of every snapshot, so a future format can be told apart.
const SNAPSHOT_FORMAT_VERSION: u8 = 1;

/// The in-memory part of what the cluster agrees on, rebuilt identically on
/// every replica (queue data and the cache directory are in the [`Store`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Latest leader time seen in any entry. Leaders' clocks differ, so the
    /// state machine's notion of "now" only moves forward: `max(seen, entry)`.
    pub now_ms: u64,
    /// Opaque application entries.
    pub appends: AppendLog,
    /// Distributed locks.
    pub locks: LockTable,
    /// The in-memory part of the cache directory: its version counter.
    /// Defaulted so snapshots taken before the cache existed still decode.
    #[serde(default)]
    pub cache: CacheDirectory,
}

/// What applying one entry produced: the answer for the proposing client
/// and the events every replica emits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// The proposer's answer.
    pub response: Response,
    /// What changed, in order.
    pub events: Vec<Event>,
}

/// A snapshot that cannot be decoded.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The first byte names a format this build does not know.
    #[error("unknown snapshot format version {0}")]
    Version(u8),
    /// The bytes do not decode as a state.
    #[error("malformed snapshot: {0}")]
    Malformed(String),
}

impl State {
    /// Applies the committed entry at log `index`. Deterministic: the result
    /// depends only on `self`, the queue and cache records in `store`,
    /// `index` and `request`. Every entry first lets time pass (expiring lock leases and
    /// waits, then queue timers, at most [`queue::EXPIRED_PER_ENTRY_MAX`]),
    /// then runs its command.
    ///
    /// Queue and cache data are read from and written to `store` only. Any store
    /// content is tolerated (a missing or undecodable record is absent), so
    /// replaying entries against a store that discards writes and reads as
    /// empty rebuilds the in-memory state exactly.
    pub fn apply(&mut self, store: &mut dyn Store, index: u64, request: &Request) -> Output {
        self.now_ms = self.now_ms.max(request.time_ms);
        let ctx = Ctx { index, now_ms: self.now_ms };
        let mut events = Vec::new();
        self.locks.expire(ctx, &mut events);
        queue::expire(store, ctx, &mut events);
        let response = match &request.command {
            Command::Append { .. } => Response::Appended { total: self.appends.apply(index) },
            Command::LockAcquire(acquire) => Response::LockAcquired(self.locks.acquire(ctx, acquire, &mut events)),
            Command::LockRelease { resource, owner } => {
                Response::LockReleased { released: self.locks.release(ctx, resource, owner, &mut events) }
            }
            Command::LockRenew { owner, ttl_ms } => {
                Response::LockRenewed { renewed: self.locks.renew(ctx, owner, *ttl_ms) }
            }
            Command::QueueProduce { queue, messages, max_deliveries } => Response::QueueProduced {
                ids: queue::produce(store, ctx, queue, messages, *max_deliveries, &mut events),
            },
            Command::QueueConsume { queue, consumer, max, visibility_ms } => {
                Response::QueueConsumed { messages: queue::consume(store, ctx, queue, consumer, *max, *visibility_ms) }
            }
            Command::QueueAck { queue, ids } => match queue::ack(store, queue, ids) {
                Some(acked) => Response::QueueAcked { acked },
                None => Response::QueueNotFound,
            },
            Command::QueueNack { queue, ids, delay_ms } => {
                match queue::nack(store, ctx, queue, ids, *delay_ms, &mut events) {
                    Some(requeued) => Response::QueueRequeued { requeued },
                    None => Response::QueueNotFound,
                }
            }
            Command::CachePut { node, key, value } => {
                Response::Cache(cache::put(&mut self.cache, store, *node, key, value, &mut events))
            }
            Command::CacheFill { node, key, version } => Response::Cache(cache::fill(store, *node, key, *version)),
            Command::CacheWriteBack { key, version, embedded } => {
                Response::Cache(cache::write_back(store, key, *version, *embedded, &mut events))
            }
            Command::CacheEvict { node, key, version } => Response::Cache(cache::evict(store, *node, key, *version)),
            Command::CacheInvalidate { key } => Response::Cache(cache::invalidate(store, key, &mut events)),
            Command::CacheDelete { key } => Response::Cache(cache::delete(store, key, &mut events)),
            Command::CacheReset { node } => Response::Cache(cache::reset(store, *node)),
            Command::Tick => Response::Empty,
        };
        Output { response, events }
    }

    /// The earliest time at which something expires (a lock lease or wait,
    /// a queue visibility lease or nack delay), so the leader can propose a
    /// [`Command::Tick`] then. At or before `now_ms` while more queue timers
    /// are due than one entry handles.
    pub fn next_deadline_ms(&self, store: &dyn Store) -> Option<u64> {
        let lock = self.locks.next_deadline_ms();
        let queue = queue::next_deadline_ms(store);
        // `None` sorts first, so `min` alone would prefer "nothing due".
        lock.into_iter().chain(queue).min()
    }

    /// Encodes the whole state for a snapshot (version byte, then JSON).
    pub fn to_snapshot(&self) -> Vec<u8> {
        let mut bytes = vec![SNAPSHOT_FORMAT_VERSION];
        // Serialising plain structs to a Vec cannot fail.
        serde_json::to_writer(&mut bytes, self).expect("state serialises");
        bytes
    }

    /// Decodes a snapshot made by [`State::to_snapshot`].
    pub fn from_snapshot(bytes: &[u8]) -> Result<State, SnapshotError> {
        match bytes.split_first() {
            Some((&SNAPSHOT_FORMAT_VERSION, body)) => {
                serde_json::from_slice(body).map_err(|e| SnapshotError::Malformed(e.to_string()))
            }
            Some((&other, _)) => Err(SnapshotError::Version(other)),
            None => Err(SnapshotError::Malformed("empty snapshot".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemStore;
    use proptest::prelude::*;

    fn append(time_ms: u64) -> Request {
        Request { time_ms, command: Command::Append { data: "1".into() } }
    }

    #[test]
    fn appends_are_counted_in_order() {
        let (mut state, mut store) = (State::default(), MemStore::default());
        assert_eq!(state.apply(&mut store, 3, &append(10)).response, Response::Appended { total: 1 });
        assert_eq!(state.apply(&mut store, 4, &append(11)).response, Response::Appended { total: 2 });
        assert_eq!(state.appends.last_index, Some(4));
    }

    #[test]
    fn time_never_goes_backwards_across_leaders() {
        let (mut state, mut store) = (State::default(), MemStore::default());
        state.apply(&mut store, 1, &append(1_000));
        state.apply(&mut store, 2, &append(900)); // a new leader with a slower clock
        assert_eq!(state.now_ms, 1_000);
    }

    #[test]
    fn snapshots_from_before_the_cache_still_decode() {
        let state = State { now_ms: 5, ..State::default() };
        let mut json: serde_json::Value = serde_json::from_slice(&state.to_snapshot()[1..]).unwrap();
        json.as_object_mut().unwrap().remove("cache").expect("the cache is snapshotted");
        let old = [&[SNAPSHOT_FORMAT_VERSION][..], &serde_json::to_vec(&json).unwrap()].concat();
        assert_eq!(State::from_snapshot(&old).unwrap(), state);
    }

    #[test]
    fn snapshot_rejects_unknown_version_and_garbage() {
        assert!(matches!(State::from_snapshot(&[9, 1, 2]), Err(SnapshotError::Version(9))));
        assert!(matches!(State::from_snapshot(&[1, b'x']), Err(SnapshotError::Malformed(_))));
        assert!(State::from_snapshot(&[]).is_err());
    }

    proptest! {
        /// Determinism: replaying the same entries gives the same state, and a
        /// snapshot taken midway plus the rest gives that state too.
        #[test]
        fn replay_and_snapshot_agree(times in proptest::collection::vec(0u64..10_000, 0..50), cut in 0usize..50) {
            let entries: Vec<Request> = times.iter().map(|&t| append(t)).collect();
            let store = &mut MemStore::default();
            let mut whole = State::default();
            for (i, e) in entries.iter().enumerate() { whole.apply(store, i as u64, e); }

            let cut = cut.min(entries.len());
            let mut first = State::default();
            for (i, e) in entries[..cut].iter().enumerate() { first.apply(store, i as u64, e); }
            let mut resumed = State::from_snapshot(&first.to_snapshot()).unwrap();
            for (i, e) in entries.iter().enumerate().skip(cut) { resumed.apply(store, i as u64, e); }
            prop_assert_eq!(&resumed, &whole);
            prop_assert_eq!(whole.appends.total, entries.len() as u64);
        }
    }
}
