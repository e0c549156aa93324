//! Robustness: the engine replays old entries against a store that discards
//! writes and reads as empty (to rebuild only the in-memory state), and a
//! store may hold anything. Applying must never panic, and the in-memory
//! state (the version counter) must come out exactly as with the real
//! store.

use dsync_statemachine::cache::{self, CacheOutcome};
use dsync_statemachine::store::DiscardStore;
use dsync_statemachine::{Command, MemStore, Request, Response, State, Store};

use crate::damage::{junk_keys_and_flipped_values, one_record_damaged};

/// A script touching every cache command, with keys and versions that
/// exist and some that don't.
fn script() -> Vec<Request> {
    let put = |node, key: &str| Command::CachePut { node, key: key.into(), value: format!("\"{key}{node}\"") };
    let fill = |node, key: &str, version| Command::CacheFill { node, key: key.into(), version };
    let commands = vec![
        put(1, "a"),
        fill(2, "a", 1),
        fill(3, "a", 7),
        put(2, "b\0"),
        Command::CacheWriteBack { key: "a".into(), version: 1, embedded: true },
        Command::CacheEvict { node: 2, key: "a".into(), version: 1 },
        put(3, "a"),
        fill(1, "b\0", 2),
        Command::CacheWriteBack { key: "b\0".into(), version: 2, embedded: false },
        Command::CacheInvalidate { key: "a".into() },
        Command::CacheReset { node: 1 },
        Command::CacheDelete { key: "b\0".into() },
        Command::CacheDelete { key: "nope".into() },
        put(1, "c"),
        fill(2, "c", 4),
        Command::CacheReset { node: 2 },
        Command::Append { data: "1".into() },
    ];
    commands.into_iter().enumerate().map(|(i, command)| Request { time_ms: 7 * i as u64, command }).collect()
}

#[test]
fn replaying_against_a_discarding_store_rebuilds_the_version_counter() {
    let (mut real, mut store) = (State::default(), MemStore::default());
    let mut replayed = State::default();
    for (i, request) in script().iter().enumerate() {
        let index = i as u64 + 1;
        real.apply(&mut store, index, request);
        let output = replayed.apply(&mut DiscardStore, index, request);
        assert_eq!(replayed, real, "entry {index}");
        match (&request.command, &output.response) {
            (Command::CachePut { .. }, Response::Cache(CacheOutcome::Applied(applied))) => {
                assert_eq!(applied.version, replayed.cache.last_version, "versions depend on the state only")
            }
            (Command::CacheReset { .. }, response) => {
                assert_eq!(response, &Response::Cache(CacheOutcome::Reset { dropped: 0 }))
            }
            (Command::Append { .. }, _) => {}
            (_, response) => assert_eq!(response, &Response::Cache(CacheOutcome::NotFound)),
        }
    }
    assert_eq!(real.cache.last_version, 4);
    assert_eq!(cache::check_invariants(&store), Ok(()));
    assert!(store.entries.len() > 5, "the script did leave cache records behind");
}

/// Applies the script twice over on `store` (corrupted in some way), reading
/// every view after each entry: nothing may panic.
fn survive(mut store: MemStore) {
    let mut state = State::default();
    let script = script();
    for (i, request) in script.iter().chain(script.iter()).enumerate() {
        state.apply(&mut store, 100 + i as u64, request);
        for key in ["a", "b\0", "c", "nope"] {
            let _ = cache::line(&store, key);
            let _ = cache::memory_value(&store, key);
        }
        let _ = cache::dirty_keys(&store, None, 10);
        let _ = cache::held_by(&store, 1, Some("a"), 10);
        let _ = cache::check_invariants(&store);
    }
}

/// The store after the script has run up to entry `upto`.
fn store_after(upto: usize) -> MemStore {
    let (mut state, mut store) = (State::default(), MemStore::default());
    for (i, request) in script().iter().take(upto).enumerate() {
        state.apply(&mut store, i as u64 + 1, request);
    }
    store
}

#[test]
fn no_store_content_makes_apply_panic() {
    for upto in [2, 5, 9, 15] {
        let clean = store_after(upto);
        assert!(!clean.entries.is_empty());
        // Each record alone: truncated, extended, emptied, missing, swapped.
        one_record_damaged(&clean).into_iter().for_each(survive);
        // Keys of the cache space that decode as nothing, and every value flipped.
        survive(junk_keys_and_flipped_values(
            &clean,
            &[&b"c"[..], b"cr", b"ch\x00", b"ch\x00\x00\x00\x00\x00\x00\x00\x01a", b"cd\x00", b"cm", b"cz"],
        ));
    }
}

#[test]
fn a_delete_removes_a_memory_value_left_without_its_record() {
    let (mut state, mut store) = (State::default(), store_after(5));
    assert!(cache::memory_value(&store, "a").is_some());
    let record: Vec<u8> = store.entries.keys().find(|k| k.starts_with(b"cra")).cloned().unwrap();
    store.delete(&record);
    let delete = Request { time_ms: 0, command: Command::CacheDelete { key: "a".into() } };
    assert_eq!(state.apply(&mut store, 50, &delete).response, Response::Cache(CacheOutcome::NotFound));
    assert_eq!(cache::memory_value(&store, "a"), None);
}
