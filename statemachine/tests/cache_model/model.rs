//! The reference: the directory rules written the obvious way, over
//! `BTreeMap`s, with no indexes and no encoding. Reset walks every line.
//! Slow and plainly correct; the real directory must agree with it entry
//! for entry.

use std::collections::BTreeMap;

use dsync_statemachine::cache::{Applied, CacheOutcome, Holder, InvalidationReason, Line, Mesi, NodeId};
use dsync_statemachine::{Command, Event, Response};

/// One key's line.
#[derive(Debug, Clone)]
struct ModelLine {
    version: u64,
    dirty: Option<String>,
    holders: BTreeMap<NodeId, Mesi>,
}

/// The whole reference state.
#[derive(Debug, Default)]
pub struct Model {
    last_version: u64,
    lines: BTreeMap<String, ModelLine>,
    memory: BTreeMap<String, (u64, String)>,
}

impl ModelLine {
    /// The answer describing this line after a command that dropped `dropped`.
    fn applied(&self, key: &str, dropped: Vec<NodeId>) -> CacheOutcome {
        CacheOutcome::Applied(Applied {
            key: key.to_string(),
            version: self.version,
            dirty: self.dirty.is_some(),
            holders: holders(&self.holders),
            dropped,
        })
    }
}

/// The holder list of a holder map.
fn holders(map: &BTreeMap<NodeId, Mesi>) -> Vec<Holder> {
    map.iter().map(|(&node, &state)| Holder { node, state }).collect()
}

impl Model {
    /// Applies one cache command.
    pub fn apply(&mut self, command: &Command) -> (Response, Vec<Event>) {
        let mut events = Vec::new();
        let outcome = match command {
            Command::CachePut { node, key, value } => self.put(*node, key, value, &mut events),
            Command::CacheFill { node, key, version } => self.fill(*node, key, *version),
            Command::CacheWriteBack { key, version, embedded } => {
                self.write_back(key, *version, *embedded, &mut events)
            }
            Command::CacheEvict { node, key, version } => self.evict(*node, key, *version),
            Command::CacheInvalidate { key } => self.invalidate(key, &mut events),
            Command::CacheDelete { key } => self.delete(key, &mut events),
            Command::CacheReset { node } => self.reset(*node),
            other => unreachable!("the model only knows the cache: {other:?}"),
        };
        (Response::Cache(outcome), events)
    }

    fn put(&mut self, node: NodeId, key: &str, value: &str, events: &mut Vec<Event>) -> CacheOutcome {
        self.last_version += 1;
        let dropped: Vec<NodeId> = match self.lines.get(key) {
            Some(line) => line.holders.keys().copied().filter(|n| *n != node).collect(),
            None => Vec::new(),
        };
        let line = ModelLine {
            version: self.last_version,
            dirty: Some(value.to_string()),
            holders: BTreeMap::from([(node, Mesi::M)]),
        };
        events.push(Event::CacheInvalidated {
            key: key.into(),
            version: line.version,
            nodes: dropped.clone(),
            reason: InvalidationReason::Put,
        });
        let outcome = line.applied(key, dropped);
        self.lines.insert(key.to_string(), line);
        outcome
    }

    /// The line of `key` at `version`, or the answer if there is none.
    fn current(&mut self, key: &str, version: u64) -> Result<&mut ModelLine, CacheOutcome> {
        match self.lines.get_mut(key) {
            None => Err(CacheOutcome::NotFound),
            Some(line) if line.version != version => Err(CacheOutcome::Stale { version: line.version }),
            Some(line) => Ok(line),
        }
    }

    fn fill(&mut self, node: NodeId, key: &str, version: u64) -> CacheOutcome {
        let line = match self.current(key, version) {
            Ok(line) => line,
            Err(outcome) => return outcome,
        };
        if !line.holders.contains_key(&node) {
            let alone = line.holders.is_empty();
            for state in line.holders.values_mut() {
                if matches!(state, Mesi::M | Mesi::E) {
                    *state = Mesi::S;
                }
            }
            line.holders.insert(node, if alone { Mesi::E } else { Mesi::S });
        }
        line.applied(key, Vec::new())
    }

    fn write_back(&mut self, key: &str, version: u64, embedded: bool, events: &mut Vec<Event>) -> CacheOutcome {
        let line = match self.current(key, version) {
            Ok(line) => line,
            Err(outcome) => return outcome,
        };
        let mut written = None;
        if let Some(value) = line.dirty.take() {
            for state in line.holders.values_mut() {
                if *state == Mesi::M {
                    *state = Mesi::E;
                }
            }
            events.push(Event::CacheWrittenBack { key: key.into(), version });
            written = embedded.then_some(value);
        }
        let outcome = line.applied(key, Vec::new());
        if let Some(value) = written {
            self.memory.insert(key.to_string(), (version, value));
        }
        outcome
    }

    fn evict(&mut self, node: NodeId, key: &str, version: u64) -> CacheOutcome {
        let line = match self.current(key, version) {
            Ok(line) => line,
            Err(outcome) => return outcome,
        };
        let dropped = if line.holders.remove(&node).is_some() { vec![node] } else { Vec::new() };
        line.applied(key, dropped)
    }

    fn invalidate(&mut self, key: &str, events: &mut Vec<Event>) -> CacheOutcome {
        let Some(line) = self.lines.get_mut(key) else { return CacheOutcome::NotFound };
        let dropped: Vec<NodeId> = std::mem::take(&mut line.holders).into_keys().collect();
        events.push(Event::CacheInvalidated {
            key: key.into(),
            version: line.version,
            nodes: dropped.clone(),
            reason: InvalidationReason::Invalidate,
        });
        line.applied(key, dropped)
    }

    fn delete(&mut self, key: &str, events: &mut Vec<Event>) -> CacheOutcome {
        self.memory.remove(key);
        let Some(line) = self.lines.remove(key) else { return CacheOutcome::NotFound };
        let dropped: Vec<NodeId> = line.holders.keys().copied().collect();
        events.push(Event::CacheInvalidated {
            key: key.into(),
            version: line.version,
            nodes: dropped.clone(),
            reason: InvalidationReason::Delete,
        });
        CacheOutcome::Applied(Applied {
            key: key.into(),
            version: line.version,
            dirty: false,
            holders: Vec::new(),
            dropped,
        })
    }

    fn reset(&mut self, node: NodeId) -> CacheOutcome {
        let mut dropped = 0;
        for line in self.lines.values_mut() {
            if line.holders.remove(&node).is_some() {
                dropped += 1;
            }
        }
        CacheOutcome::Reset { dropped }
    }

    /// `key`'s current version, if it is in the directory.
    pub fn version(&self, key: &str) -> Option<u64> {
        self.lines.get(key).map(|line| line.version)
    }

    /// `key`'s line as `cache::line` shows it.
    pub fn line(&self, key: &str) -> Option<Line> {
        let line = self.lines.get(key)?;
        Some(Line { version: line.version, dirty: line.dirty.clone(), holders: holders(&line.holders) })
    }

    /// `key`'s embedded memory value.
    pub fn memory_value(&self, key: &str) -> Option<(u64, String)> {
        self.memory.get(key).cloned()
    }

    /// Every dirty key, in key order.
    pub fn dirty_keys(&self) -> Vec<String> {
        self.lines.iter().filter(|(_, line)| line.dirty.is_some()).map(|(key, _)| key.clone()).collect()
    }

    /// Every key `node` holds, in key order.
    pub fn held_by(&self, node: NodeId) -> Vec<String> {
        self.lines.iter().filter(|(_, line)| line.holders.contains_key(&node)).map(|(key, _)| key.clone()).collect()
    }
}
