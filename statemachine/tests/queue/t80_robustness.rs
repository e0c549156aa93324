//! Robustness: the engine replays old entries against a store that discards
//! writes and reads as empty (to rebuild only the in-memory state), and a
//! store may hold anything. Applying must never panic, and the in-memory
//! state must come out exactly as with the real store.

use dsync_statemachine::lock::{AcquireRequest, LockMode};
use dsync_statemachine::queue::EXPIRED_PER_ENTRY_MAX;
use dsync_statemachine::store::DiscardStore;
use dsync_statemachine::{Command, MemStore, Request, Response, State, Store};

use crate::damage::{junk_keys_and_flipped_values, one_record_damaged};

use crate::common::*;

/// A script touching every command, with ids that exist and ids that don't.
fn script() -> Vec<Request> {
    let acquire = |owner: &str, ttl_ms| {
        let request = AcquireRequest {
            resource: "r".into(),
            owner: owner.into(),
            mode: LockMode::Exclusive,
            ttl_ms,
            wait_ms: 1000,
        };
        Command::LockAcquire(request)
    };
    let ids = |index: u64| (0..3).map(|position| id(index, position)).chain(["junk".to_string()]).collect::<Vec<_>>();
    let produce = |queue: &str| Command::QueueProduce {
        queue: queue.into(),
        messages: vec![msg(Some("k"), "1"), msg(None, "2"), msg(None, "3")],
        max_deliveries: 1,
    };
    let consume =
        |queue: &str| Command::QueueConsume { queue: queue.into(), consumer: "w".into(), max: 2, visibility_ms: 10 };
    let commands = vec![
        produce("q"),
        acquire("o1", 50),
        consume("q"),
        Command::QueueNack { queue: "q".into(), ids: ids(1), delay_ms: 0 },
        consume("q"),
        acquire("o2", 50),
        Command::Tick,
        consume("q.dlq"),
        Command::QueueAck { queue: "q.dlq".into(), ids: ids(1) },
        Command::QueueAck { queue: "nowhere".into(), ids: ids(1) },
        Command::Append { data: "1".into() },
        produce("p"),
        consume("p"),
        Command::QueueNack { queue: "p".into(), ids: ids(12), delay_ms: 5 },
        Command::Tick,
        Command::QueueAck { queue: "p".into(), ids: ids(12) },
    ];
    commands.into_iter().enumerate().map(|(i, command)| Request { time_ms: 7 * i as u64, command }).collect()
}

#[test]
fn replaying_against_a_discarding_store_rebuilds_the_in_memory_state() {
    let (mut real, mut store) = (State::default(), MemStore::default());
    let mut replayed = State::default();
    for (i, request) in script().iter().enumerate() {
        let index = i as u64 + 1;
        let expected = real.apply(&mut store, index, request);
        let output = replayed.apply(&mut DiscardStore, index, request);
        assert_eq!(replayed, real, "entry {index}");
        match (&request.command, &output.response) {
            (Command::QueueProduce { .. }, _) => assert_eq!(output, expected, "ids depend on the index only"),
            (Command::QueueConsume { .. }, response) => assert_eq!(response, &consumed(vec![])),
            (Command::QueueAck { .. } | Command::QueueNack { .. }, response) => {
                assert_eq!(response, &Response::QueueNotFound)
            }
            _ => {}
        }
    }
    assert!(store.entries.len() > 5, "the script did leave queue records behind");
    assert_eq!(replayed.next_deadline_ms(&DiscardStore), replayed.locks.next_deadline_ms());
}

/// Applies the script, then every command of it again at a later time, on
/// `store` (corrupted in some way): nothing may panic.
fn survive(mut store: MemStore) {
    let mut state = State::default();
    let script = script();
    for (i, request) in script.iter().chain(script.iter()).enumerate() {
        let request = Request { time_ms: 1000 + 100 * i as u64, command: request.command.clone() };
        state.apply(&mut store, 100 + i as u64, &request);
        let _ = state.next_deadline_ms(&store);
    }
    let _ = dsync_statemachine::queue::all_stats(&store);
    let _ = dsync_statemachine::queue::stats(&store, "q");
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
    for upto in [1, 3, 5, 8, 13] {
        let clean = store_after(upto);
        // Each record alone: truncated, extended, emptied, missing, swapped.
        one_record_damaged(&clean).into_iter().for_each(survive);
        // Keys of the queue space that decode as nothing, and every value flipped.
        survive(junk_keys_and_flipped_values(
            &clean,
            &[&b"q"[..], b"qt", b"qt\x00\x00\x00\x00\x00\x00\x00\x01", b"qm\x00", b"qr\x00\x01", b"qz"],
        ));
    }
}

#[test]
fn a_flood_of_due_garbage_timers_is_worked_off_a_bounded_batch_at_a_time() {
    let mut store = MemStore::default();
    for i in 0..(EXPIRED_PER_ENTRY_MAX as u64 + 1) {
        let mut key = b"qt".to_vec();
        key.extend_from_slice(&0u64.to_be_bytes());
        key.extend_from_slice(&i.to_be_bytes());
        store.put(&key, Vec::new());
    }
    let mut state = State::default();
    let tick = Request { time_ms: 1, command: Command::Tick };
    assert_eq!(state.apply(&mut store, 1, &tick).events, vec![]);
    assert_eq!(store.entries.len(), 1, "one entry's worth was dropped");
    assert_eq!(state.next_deadline_ms(&store), Some(0), "garbage or not, a due timer key asks for a tick");
    state.apply(&mut store, 2, &tick);
    assert!(store.entries.is_empty());
}
