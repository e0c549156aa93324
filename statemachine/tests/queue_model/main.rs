//! Model test: random sequences of produce, consume, ack, nack and ticks
//! over a few queues (a dead-letter queue among them), with time moving
//! forward, applied both to the real `State` over a `MemStore` and to the
//! reference in `model.rs`. Every entry's response and events must be equal,
//! and so must every queue's stats, every stored message and the next
//! deadline. Along the way: the store's invariants hold, ids are unique,
//! every produced message is in exactly one place (one queue, ready, in
//! flight or delayed, or acknowledged), and a replica replaying the same
//! entries against a discarding store rebuilds the same in-memory state.
//!
//! proptest prints the failing case (shrunk) and the seed; a failure found
//! once is replayed from `proptest-regressions/` and should become a test in
//! `tests/queue/`.

mod model;

use std::collections::BTreeMap;

use dsync_statemachine::queue::{self, NewMessage};
use dsync_statemachine::store::DiscardStore;
use dsync_statemachine::{Command, Event, MemStore, Request, Response, State};
use proptest::prelude::*;

use model::Model;

/// Queues commands name. `a.dlq` is where `a` dead-letters (and can be
/// produced to directly); `b.dlq` only ever receives dead letters.
const QUEUES: [&str; 4] = ["a", "b", "a.dlq", "b.dlq"];
/// Message keys.
const KEYS: [&str; 2] = ["k1", "k2"];

/// Which id an ack or nack names, resolved when the step runs.
#[derive(Debug, Clone)]
enum Pick {
    /// The i-th (mod count) id of the queue's in-flight messages.
    InFlight(usize),
    /// The i-th (mod count) id ever produced, in any queue, acked or not.
    Produced(usize),
    /// An id nobody produced, or not an id at all.
    Junk(bool),
}

/// One generated entry, before its ids are resolved.
#[derive(Debug, Clone)]
enum Op {
    Produce { queue: usize, keys: Vec<Option<usize>>, max_deliveries: u32 },
    Consume { queue: usize, max: u32, visibility_ms: u64 },
    Ack { queue: usize, picks: Vec<Pick> },
    Nack { queue: usize, picks: Vec<Pick>, delay_ms: u64 },
    Tick,
}

/// One generated entry: how far time moves, then the operation.
#[derive(Debug, Clone)]
struct Step {
    advance_ms: u64,
    op: Op,
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        6 => (0usize..8).prop_map(Pick::InFlight),
        3 => (0usize..64).prop_map(Pick::Produced),
        1 => any::<bool>().prop_map(Pick::Junk),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let queue = prop_oneof![4 => Just(0usize), 3 => Just(1), 2 => Just(2), 1 => Just(3)];
    let keys = proptest::collection::vec(proptest::option::of(0usize..KEYS.len()), 0..4);
    let max_deliveries = prop_oneof![1 => Just(0u32), 6 => 1u32..4];
    let produce = (queue.clone(), keys, max_deliveries).prop_map(|(queue, keys, max_deliveries)| Op::Produce {
        queue,
        keys,
        max_deliveries,
    });
    let consume = (queue.clone(), 0u32..4, 1u64..120).prop_map(|(queue, max, visibility_ms)| Op::Consume {
        queue,
        max,
        visibility_ms,
    });
    let picks = || proptest::collection::vec(pick(), 0..4);
    let ack = (queue.clone(), picks()).prop_map(|(queue, picks)| Op::Ack { queue, picks });
    let delay_ms = prop_oneof![Just(0u64), 1u64..100];
    let nack = (queue, picks(), delay_ms).prop_map(|(queue, picks, delay_ms)| Op::Nack { queue, picks, delay_ms });
    prop_oneof![4 => produce, 4 => consume, 2 => ack, 2 => nack, 1 => Just(Op::Tick)]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = (prop_oneof![1 => Just(0u64), 3 => 1u64..40], op()).prop_map(|(advance_ms, op)| Step { advance_ms, op });
    proptest::collection::vec(step, 1..120)
}

/// The command of `op`, its ids resolved against the model (in-flight ids)
/// and the ids produced so far.
fn command(op: &Op, model: &Model, produced: &[String], index: u64) -> Command {
    let resolve = |queue: &str, picks: &[Pick]| -> Vec<String> {
        let in_flight = model.in_flight(queue);
        let resolve_one = |pick: &Pick| match pick {
            Pick::InFlight(i) if !in_flight.is_empty() => in_flight[i % in_flight.len()].clone(),
            Pick::Produced(i) if !produced.is_empty() => produced[i % produced.len()].clone(),
            Pick::Junk(true) => queue::message_id(index + 1000, 0),
            _ => "not-an-id".to_string(),
        };
        picks.iter().map(resolve_one).collect()
    };
    match op {
        Op::Produce { queue, keys, max_deliveries } => {
            let messages = keys
                .iter()
                .enumerate()
                .map(|(i, key)| NewMessage {
                    key: key.map(|k| KEYS[k].to_string()),
                    body: format!("{{\"n\":{index}{i}}}"),
                })
                .collect();
            Command::QueueProduce { queue: QUEUES[*queue].into(), messages, max_deliveries: *max_deliveries }
        }
        Op::Consume { queue, max, visibility_ms } => Command::QueueConsume {
            queue: QUEUES[*queue].into(),
            consumer: format!("w{}", index % 3),
            max: *max,
            visibility_ms: *visibility_ms,
        },
        Op::Ack { queue, picks } => {
            Command::QueueAck { queue: QUEUES[*queue].into(), ids: resolve(QUEUES[*queue], picks) }
        }
        Op::Nack { queue, picks, delay_ms } => Command::QueueNack {
            queue: QUEUES[*queue].into(),
            ids: resolve(QUEUES[*queue], picks),
            delay_ms: *delay_ms,
        },
        Op::Tick => Command::Tick,
    }
}

/// Compares everything observable of the real queues with the model, and
/// checks that every produced message is in exactly one place.
fn assert_same_queues(store: &MemStore, model: &Model, produced: &[String]) -> Result<(), TestCaseError> {
    prop_assert_eq!(queue::check_invariants(store), Ok(()));
    prop_assert_eq!(queue::all_stats(store), model.all_stats());
    prop_assert_eq!(queue::next_deadline_ms(store), model.next_deadline_ms());
    let mut places: BTreeMap<String, usize> = BTreeMap::new();
    for name in QUEUES {
        let messages = queue::messages(store, name, None, usize::MAX);
        prop_assert_eq!(&messages, &model.messages(name), "queue {}", name);
        for message in messages {
            *places.entry(message.id).or_default() += 1;
        }
    }
    let acked_total: u64 = queue::all_stats(store).iter().map(|s| s.acked_total).sum();
    prop_assert_eq!(acked_total, model.acked.len() as u64);
    for id in produced {
        let place = places.remove(id).unwrap_or(0) + usize::from(model.acked.contains(id));
        prop_assert_eq!(place, 1, "message {} is in {} places", id, place);
    }
    prop_assert!(places.is_empty(), "stored but never produced: {:?}", places);
    Ok(())
}

/// The ids a produce answered.
fn produced_ids(response: &Response) -> &[String] {
    match response {
        Response::QueueProduced { ids } => ids,
        _ => &[],
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn queues_match_the_reference_model(steps in steps()) {
        let (mut state, mut store) = (State::default(), MemStore::default());
        let mut replayed = State::default();
        let mut model = Model::default();
        let mut produced: Vec<String> = Vec::new();
        let mut time_ms = 1_000;
        for (i, step) in steps.iter().enumerate() {
            let index = i as u64 + 1;
            time_ms += step.advance_ms;
            let command = command(&step.op, &model, &produced, index);
            let request = Request { time_ms, command: command.clone() };
            let output = state.apply(&mut store, index, &request);
            let (response, events) = model.apply(index, time_ms, &command);
            prop_assert_eq!(&output.response, &response, "entry {}: {:?}", index, command);
            prop_assert_eq!(&output.events, &events, "entry {}: {:?}", index, command);
            for id in produced_ids(&output.response) {
                prop_assert!(!produced.contains(id), "id {} issued twice", id);
                produced.push(id.clone());
            }
            assert_same_queues(&store, &model, &produced)?;
            replayed.apply(&mut DiscardStore, index, &request);
            prop_assert_eq!(&replayed, &state);
        }
    }
}

/// The generator is only useful if it reaches the interesting states; this
/// fails if a change to it stops producing redeliveries, dead letters,
/// deliveries out of a dead-letter queue, delayed messages coming back and
/// effective acks and nacks.
#[test]
fn generated_histories_reach_redeliveries_dead_letters_and_delays() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let mut seen: BTreeMap<&str, u64> = BTreeMap::new();
    for _ in 0..64 {
        let steps = steps().new_tree(&mut runner).expect("generates").current();
        let (mut state, mut store) = (State::default(), MemStore::default());
        let mut model = Model::default();
        let mut produced: Vec<String> = Vec::new();
        let mut time_ms = 1_000;
        for (i, step) in steps.iter().enumerate() {
            let index = i as u64 + 1;
            time_ms += step.advance_ms;
            let command = command(&step.op, &model, &produced, index);
            let output = state.apply(&mut store, index, &Request { time_ms, command: command.clone() });
            model.apply(index, time_ms, &command);
            produced.extend(produced_ids(&output.response).iter().cloned());
            for event in &output.events {
                let kind = match event {
                    Event::QueueDeadLettered { .. } => "dead letters",
                    Event::QueueReady { .. } => "ready again",
                    _ => continue,
                };
                *seen.entry(kind).or_default() += 1;
            }
            let kind = match (&command, &output.response) {
                (Command::QueueConsume { queue, .. }, Response::QueueConsumed { messages })
                    if queue.ends_with(".dlq") && !messages.is_empty() =>
                {
                    "dead-letter deliveries"
                }
                (Command::QueueAck { .. }, Response::QueueAcked { acked }) if *acked > 0 => "acks",
                (Command::QueueNack { delay_ms, .. }, Response::QueueRequeued { requeued }) if *requeued > 0 => {
                    if *delay_ms > 0 {
                        "delayed nacks"
                    } else {
                        "nacks"
                    }
                }
                _ => continue,
            };
            *seen.entry(kind).or_default() += 1;
        }
    }
    let kinds = ["dead letters", "ready again", "dead-letter deliveries", "acks", "delayed nacks", "nacks"];
    println!("{seen:?}");
    assert!(kinds.iter().all(|kind| seen.get(kind).is_some_and(|n| *n >= 5)), "{seen:?}");
}
