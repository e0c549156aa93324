//! A scripted replica: applies cache commands through `State::apply` at
//! consecutive log indices over a `MemStore`, checks the directory's
//! invariants after every entry, and builds the expected outputs the tests
//! compare whole.

use dsync_statemachine::cache::{self, Applied, CacheOutcome, Holder, InvalidationReason, Line, Mesi, NodeId};
use dsync_statemachine::{Command, Event, MemStore, Output, Request, Response, State};

pub use dsync_statemachine::cache::Mesi::{E, M, S};

/// One replica, its store and the index of the last entry it applied.
#[derive(Default)]
pub struct Replica {
    /// The in-memory state.
    pub state: State,
    /// The directory records.
    pub store: MemStore,
    /// Log index of the last applied entry (the next one gets `index + 1`).
    pub index: u64,
}

impl Replica {
    /// Applies `command` at the next index and checks the directory's
    /// invariants afterwards.
    pub fn apply(&mut self, command: Command) -> Output {
        let output = self.apply_unchecked(command);
        assert_eq!(cache::check_invariants(&self.store), Ok(()), "after entry {}", self.index);
        output
    }

    /// Applies `command` at the next index without checking the invariants:
    /// for stores a test corrupted on purpose.
    pub fn apply_unchecked(&mut self, command: Command) -> Output {
        self.index += 1;
        self.state.apply(&mut self.store, self.index, &Request { time_ms: self.index, command })
    }

    /// `node` puts `value` into `key`.
    pub fn put(&mut self, node: NodeId, key: &str, value: &str) -> Output {
        self.apply(Command::CachePut { node, key: key.into(), value: value.into() })
    }

    /// `node` puts `value` into `key` and gets the new version back.
    pub fn put_version(&mut self, node: NodeId, key: &str, value: &str) -> u64 {
        match self.put(node, key, value).response {
            Response::Cache(CacheOutcome::Applied(applied)) => applied.version,
            other => panic!("not an applied put: {other:?}"),
        }
    }

    /// `node` fills `key` at `version`.
    pub fn fill(&mut self, node: NodeId, key: &str, version: u64) -> Output {
        self.apply(Command::CacheFill { node, key: key.into(), version })
    }

    /// `key` at `version` is written back.
    pub fn write_back(&mut self, key: &str, version: u64, embedded: bool) -> Output {
        self.apply(Command::CacheWriteBack { key: key.into(), version, embedded })
    }

    /// `node` evicts `key` at `version`.
    pub fn evict(&mut self, node: NodeId, key: &str, version: u64) -> Output {
        self.apply(Command::CacheEvict { node, key: key.into(), version })
    }

    /// Every copy of `key` is dropped.
    pub fn invalidate(&mut self, key: &str) -> Output {
        self.apply(Command::CacheInvalidate { key: key.into() })
    }

    /// `key` is deleted.
    pub fn delete(&mut self, key: &str) -> Output {
        self.apply(Command::CacheDelete { key: key.into() })
    }

    /// `node` starts over with an empty cache.
    pub fn reset(&mut self, node: NodeId) -> Output {
        self.apply(Command::CacheReset { node })
    }

    /// `key`'s line.
    pub fn line(&self, key: &str) -> Option<Line> {
        cache::line(&self.store, key)
    }

    /// `key`'s embedded memory value.
    pub fn memory(&self, key: &str) -> Option<(u64, String)> {
        cache::memory_value(&self.store, key)
    }
}

/// Holders from (node, state) pairs.
pub fn holders(pairs: &[(NodeId, Mesi)]) -> Vec<Holder> {
    pairs.iter().map(|&(node, state)| Holder { node, state }).collect()
}

/// An `Applied` answer.
pub fn applied(key: &str, version: u64, dirty: bool, held: &[(NodeId, Mesi)], dropped: &[NodeId]) -> Response {
    Response::Cache(CacheOutcome::Applied(Applied {
        key: key.into(),
        version,
        dirty,
        holders: holders(held),
        dropped: dropped.to_vec(),
    }))
}

/// A line.
pub fn line(version: u64, dirty: Option<&str>, held: &[(NodeId, Mesi)]) -> Option<Line> {
    Some(Line { version, dirty: dirty.map(String::from), holders: holders(held) })
}

/// The `Stale` answer.
pub fn stale(version: u64) -> Response {
    Response::Cache(CacheOutcome::Stale { version })
}

/// The `NotFound` answer.
pub fn not_found() -> Response {
    Response::Cache(CacheOutcome::NotFound)
}

/// The answer of a reset.
pub fn reset(dropped: u64) -> Response {
    Response::Cache(CacheOutcome::Reset { dropped })
}

/// An expected output.
pub fn out(response: Response, events: Vec<Event>) -> Output {
    Output { response, events }
}

/// `cache.invalidated`.
pub fn ev_invalidated(key: &str, version: u64, nodes: &[NodeId], reason: InvalidationReason) -> Event {
    Event::CacheInvalidated { key: key.into(), version, nodes: nodes.to_vec(), reason }
}

/// `cache.written_back`.
pub fn ev_written_back(key: &str, version: u64) -> Event {
    Event::CacheWrittenBack { key: key.into(), version }
}
