//! Model test: random sequences of put, fill, write-back, evict,
//! invalidate, delete and reset over a few keys and nodes, with fills,
//! evicts and write-backs naming both current and stale versions, applied
//! both to the real `State` over a `MemStore` and to the reference in
//! `model.rs`. Every entry's response and events must be equal, and so must
//! every line, memory value, the dirty keys and every node's holdings.
//! Along the way: the directory's invariants hold after every entry; a
//! replica replaying the same entries against a discarding store rebuilds
//! the same in-memory state; and a replica restored from a snapshot taken
//! midway, over a copy of the store at that point, continues identically.
//!
//! proptest prints the failing case (shrunk) and the seed; a failure found
//! once is replayed from `proptest-regressions/` and should become a test in
//! `tests/cache/`.

mod model;

use std::collections::BTreeMap;

use dsync_statemachine::cache::{self, CacheOutcome, InvalidationReason, NodeId};
use dsync_statemachine::store::DiscardStore;
use dsync_statemachine::{Command, Event, MemStore, Output, Request, Response, State};
use proptest::prelude::*;

use model::Model;

/// Keys commands name, with a byte that could confuse the key encoding.
const KEYS: [&str; 4] = ["a", "a\0", "b", "é"];
/// Nodes commands come from.
const NODES: [NodeId; 4] = [1, 2, 3, 4];

/// Which version a fill, write-back or evict names, resolved when the step
/// runs (so it can be the current one).
#[derive(Debug, Clone)]
enum Pick {
    /// The key's current version (1 if it has none).
    Current,
    /// That many versions before the current one.
    Older(u64),
    /// One after the current one: never issued yet for this key.
    Newer,
}

/// Which key a fill, write-back or evict names, resolved when the step runs
/// (without this, a third of them would name keys not in the directory).
#[derive(Debug, Clone, Copy)]
enum KeyPick {
    /// `KEYS[i]` if it is in the directory, else the next one that is (if any).
    Live(usize),
    /// `KEYS[i]`, in the directory or not.
    Any(usize),
}

/// One generated entry, before its key and version are resolved.
#[derive(Debug, Clone)]
enum Op {
    Put { node: usize, key: usize },
    Fill { node: usize, key: KeyPick, pick: Pick },
    WriteBack { key: KeyPick, pick: Pick, embedded: bool },
    Evict { node: usize, key: KeyPick, pick: Pick },
    Invalidate { key: usize },
    Delete { key: usize },
    Reset { node: usize },
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![6 => Just(Pick::Current), 2 => (1u64..3).prop_map(Pick::Older), 1 => Just(Pick::Newer)]
}

fn op() -> impl Strategy<Value = Op> {
    let node = || 0..NODES.len();
    let key = || prop_oneof![3 => Just(0usize), 3 => Just(1), 2 => Just(2), 2 => Just(3)];
    let live = || prop_oneof![4 => key().prop_map(KeyPick::Live), 1 => key().prop_map(KeyPick::Any)];
    prop_oneof![
        4 => (node(), key()).prop_map(|(node, key)| Op::Put { node, key }),
        5 => (node(), live(), pick()).prop_map(|(node, key, pick)| Op::Fill { node, key, pick }),
        3 => (live(), pick(), prop_oneof![3 => Just(true), 1 => Just(false)])
            .prop_map(|(key, pick, embedded)| Op::WriteBack { key, pick, embedded }),
        2 => (node(), live(), pick()).prop_map(|(node, key, pick)| Op::Evict { node, key, pick }),
        1 => key().prop_map(|key| Op::Invalidate { key }),
        1 => key().prop_map(|key| Op::Delete { key }),
        1 => node().prop_map(|node| Op::Reset { node }),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..60)
}

/// The command of `op`, its key and version resolved against the model.
fn command(op: &Op, model: &Model, index: u64) -> Command {
    let live = |pick: KeyPick| match pick {
        KeyPick::Any(i) => i,
        KeyPick::Live(i) => {
            (0..KEYS.len()).map(|k| (i + k) % KEYS.len()).find(|&k| model.version(KEYS[k]).is_some()).unwrap_or(i)
        }
    };
    let version = |key: usize, pick: &Pick| {
        let current = model.version(KEYS[key]).unwrap_or(1);
        match pick {
            Pick::Current => current,
            Pick::Older(n) => current.saturating_sub(*n),
            Pick::Newer => current + 1,
        }
    };
    let key = |key: usize| KEYS[key].to_string();
    match op {
        Op::Put { node, key: k } => {
            Command::CachePut { node: NODES[*node], key: key(*k), value: format!("{{\"n\":{index}}}") }
        }
        Op::Fill { node, key: k, pick } => {
            let k = live(*k);
            Command::CacheFill { node: NODES[*node], key: key(k), version: version(k, pick) }
        }
        Op::WriteBack { key: k, pick, embedded } => {
            let k = live(*k);
            Command::CacheWriteBack { key: key(k), version: version(k, pick), embedded: *embedded }
        }
        Op::Evict { node, key: k, pick } => {
            let k = live(*k);
            Command::CacheEvict { node: NODES[*node], key: key(k), version: version(k, pick) }
        }
        Op::Invalidate { key: k } => Command::CacheInvalidate { key: key(*k) },
        Op::Delete { key: k } => Command::CacheDelete { key: key(*k) },
        Op::Reset { node } => Command::CacheReset { node: NODES[*node] },
    }
}

/// Compares everything observable of the real directory with the model.
fn assert_same_directory(store: &MemStore, model: &Model) -> Result<(), TestCaseError> {
    prop_assert_eq!(cache::check_invariants(store), Ok(()));
    for key in KEYS {
        prop_assert_eq!(cache::line(store, key), model.line(key), "line of {:?}", key);
        prop_assert_eq!(cache::memory_value(store, key), model.memory_value(key), "memory of {:?}", key);
    }
    prop_assert_eq!(cache::dirty_keys(store, None, usize::MAX), model.dirty_keys());
    for node in NODES {
        prop_assert_eq!(cache::held_by(store, node, None, usize::MAX), model.held_by(node), "node {}", node);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_directory_matches_the_reference_model(steps in steps(), cut in 0usize..60) {
        let (mut state, mut store) = (State::default(), MemStore::default());
        let mut replayed = State::default();
        let mut model = Model::default();
        let cut = cut.min(steps.len());
        let mut at_cut = None;
        let mut entries: Vec<(Request, Output)> = Vec::new();
        for (i, op) in steps.iter().enumerate() {
            if i == cut {
                at_cut = Some((state.to_snapshot(), store.clone()));
            }
            let index = i as u64 + 1;
            let command = command(op, &model, index);
            let request = Request { time_ms: 1_000 + index, command: command.clone() };
            let output = state.apply(&mut store, index, &request);
            let (response, events) = model.apply(&command);
            prop_assert_eq!(&output.response, &response, "entry {}: {:?}", index, command);
            prop_assert_eq!(&output.events, &events, "entry {}: {:?}", index, command);
            assert_same_directory(&store, &model)?;
            replayed.apply(&mut DiscardStore, index, &request);
            prop_assert_eq!(&replayed, &state);
            entries.push((request, output));
        }

        // A replica restored from the snapshot at the cut, over the store as
        // it was then, continues exactly as the original did.
        let (snapshot, mut resumed_store) = at_cut.unwrap_or_else(|| (state.to_snapshot(), store.clone()));
        let mut resumed = State::from_snapshot(&snapshot).expect("snapshot decodes");
        for (i, (request, output)) in entries.iter().enumerate().skip(cut) {
            let again = resumed.apply(&mut resumed_store, i as u64 + 1, request);
            prop_assert_eq!(&again, output, "resumed entry {}", i + 1);
        }
        prop_assert_eq!(&resumed, &state);
        prop_assert_eq!(&resumed_store, &store);
    }
}

/// The generator is only useful if it reaches the interesting cases; this
/// fails if a change to it stops producing stale and unknown versions,
/// shared and exclusive fills, write-backs, puts that drop holders,
/// evictions, deletes and resets that drop something.
#[test]
fn generated_histories_reach_every_transition() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
    let mut total = 0;
    for _ in 0..64 {
        let steps = steps().new_tree(&mut runner).expect("generates").current();
        let (mut state, mut store) = (State::default(), MemStore::default());
        let mut model = Model::default();
        total += steps.len();
        for (i, op) in steps.iter().enumerate() {
            let index = i as u64 + 1;
            let command = command(op, &model, index);
            let output = state.apply(&mut store, index, &Request { time_ms: index, command: command.clone() });
            model.apply(&command);
            for event in &output.events {
                let kind = match event {
                    Event::CacheWrittenBack { .. } => "write-backs",
                    Event::CacheInvalidated { reason: InvalidationReason::Put, nodes, .. } if !nodes.is_empty() => {
                        "puts dropping holders"
                    }
                    _ => continue,
                };
                *seen.entry(kind).or_default() += 1;
            }
            let Response::Cache(outcome) = &output.response else { panic!("not a cache response") };
            let kind = match (&command, outcome) {
                (_, CacheOutcome::Stale { .. }) => "stale",
                (_, CacheOutcome::NotFound) => "not found",
                (_, CacheOutcome::Reset { dropped }) if *dropped > 0 => "resets dropping",
                (Command::CacheFill { node, .. }, CacheOutcome::Applied(applied)) => {
                    match applied.holders.iter().find(|h| h.node == *node).map(|h| h.state.as_str()) {
                        Some("E") => "exclusive fills",
                        Some("S") if applied.holders.len() > 1 => "shared fills",
                        _ => continue,
                    }
                }
                (Command::CacheEvict { .. }, CacheOutcome::Applied(applied)) if !applied.dropped.is_empty() => {
                    "evictions"
                }
                (Command::CacheDelete { .. }, CacheOutcome::Applied(_)) => "deletes",
                _ => continue,
            };
            *seen.entry(kind).or_default() += 1;
        }
    }
    let kinds = [
        "stale",
        "not found",
        "resets dropping",
        "exclusive fills",
        "shared fills",
        "evictions",
        "deletes",
        "write-backs",
        "puts dropping holders",
    ];
    println!("{seen:?} in {total} entries");
    assert!(kinds.iter().all(|kind| seen.get(kind).is_some_and(|n| *n >= 5)), "{seen:?}");
}
