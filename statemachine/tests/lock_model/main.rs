//! Model test: random sequences of lock commands over a few resources and
//! owners, applied both to the real `State` and to the reference in
//! `model.rs`. Every entry's response and events must be equal, and so must
//! every lock's holders and waiters, the wait-for graph, the deadlock count
//! and the next deadline. Along the way: the table's invariants hold, every
//! grant's fencing token is one more than the previous grant's (of any
//! resource), the holders' tokens are distinct, and a snapshot loads back
//! equal.
//!
//! proptest prints the failing case (shrunk) and the seed; a failure found
//! once is replayed from `proptest-regressions/` and should become a test
//! in `tests/locks/`.

mod model;

use std::collections::BTreeSet;

use dsync_statemachine::lock::{AcquireRequest, LockMode};
use dsync_statemachine::{Command, Event, MemStore, Output, Request, State};
use proptest::prelude::*;

use model::Model;

/// Few names, so requests collide: contention, queues and cycles are common.
const RESOURCES: [&str; 4] = ["a", "b", "c", "d"];
/// See [`RESOURCES`].
const OWNERS: [&str; 5] = ["t1", "t2", "t3", "t4", "t5"];

/// One generated entry: how far time moves, then the command.
#[derive(Debug, Clone)]
struct Step {
    advance_ms: u64,
    command: Command,
}

fn mode() -> impl Strategy<Value = LockMode> {
    prop_oneof![Just(LockMode::Shared), Just(LockMode::Exclusive)]
}

/// A lease or wait length: mostly long against the time steps, so holds pile
/// up and wait-for cycles form, sometimes short, so expiries happen too.
fn duration_ms() -> impl Strategy<Value = u64> {
    prop_oneof![1 => 1u64..100, 2 => 100u64..2000]
}

fn command() -> impl Strategy<Value = Command> {
    let resource = proptest::sample::select(&RESOURCES[..]).prop_map(String::from);
    let owner = || proptest::sample::select(&OWNERS[..]).prop_map(String::from);
    let wait_ms = prop_oneof![1 => Just(0u64), 3 => duration_ms()];
    let acquire = (resource.clone(), owner(), mode(), duration_ms(), wait_ms).prop_map(
        |(resource, owner, mode, ttl_ms, wait_ms)| {
            Command::LockAcquire(AcquireRequest { resource, owner, mode, ttl_ms, wait_ms })
        },
    );
    let release = (resource, owner()).prop_map(|(resource, owner)| Command::LockRelease { resource, owner });
    let renew = (owner(), duration_ms()).prop_map(|(owner, ttl_ms)| Command::LockRenew { owner, ttl_ms });
    prop_oneof![6 => acquire, 3 => release, 1 => renew, 1 => Just(Command::Tick)]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = (prop_oneof![2 => Just(0u64), 3 => 1u64..40], command())
        .prop_map(|(advance_ms, command)| Step { advance_ms, command });
    proptest::collection::vec(step, 1..100)
}

/// Compares everything observable of the real table with the model.
fn assert_same_tables(state: &State, model: &Model) -> Result<(), TestCaseError> {
    let locks = &state.locks;
    for resource in RESOURCES {
        let view = locks.view(resource);
        prop_assert_eq!(view.as_ref().map(|v| v.holders.clone()).unwrap_or_default(), model.holders(resource));
        prop_assert_eq!(view.as_ref().map(|v| v.waiters.clone()).unwrap_or_default(), model.waiters(resource));
    }
    let held: Vec<String> = locks.held().into_iter().map(|v| v.resource).collect();
    let model_held: Vec<String> =
        RESOURCES.iter().filter(|r| !model.holders(r).is_empty()).map(|r| r.to_string()).collect();
    prop_assert_eq!(held, model_held);
    prop_assert_eq!(locks.wait_for(), model.edges());
    prop_assert_eq!(locks.deadlocks_resolved(), model.deadlocks_resolved);
    prop_assert_eq!(locks.hold_count(), model.hold_count());
    prop_assert_eq!(locks.next_deadline_ms(), model.next_deadline_ms());
    Ok(())
}

/// Every grant's token is one more than the previous grant's, across the
/// whole history and every resource (`last` is the last token seen), and
/// no two holders in the table share a token.
fn check_tokens(last: &mut u64, output: &Output, state: &State) -> Result<(), TestCaseError> {
    for event in &output.events {
        if let Event::LockGranted { resource, fencing_token, .. } = event {
            prop_assert_eq!(*fencing_token, *last + 1, "{}: token {} after {}", resource, fencing_token, last);
            *last = *fencing_token;
        }
    }
    let mut held = BTreeSet::new();
    for view in state.locks.held() {
        for grant in &view.holders {
            prop_assert!(
                held.insert(grant.fencing_token),
                "{}: token {} held twice",
                view.resource,
                grant.fencing_token
            );
            prop_assert!(
                grant.fencing_token <= *last,
                "{}: token {} never granted",
                view.resource,
                grant.fencing_token
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn lock_table_matches_the_reference_model(steps in steps()) {
        let mut state = State::default();
        let mut store = MemStore::default();
        let mut model = Model::default();
        let mut tokens = 0;
        let mut time_ms = 1_000;
        for (i, step) in steps.iter().enumerate() {
            let index = i as u64 + 1;
            time_ms += step.advance_ms;
            let output = state.apply(&mut store, index, &Request { time_ms, command: step.command.clone() });
            let (response, events) = model.apply(index, time_ms, &step.command);
            prop_assert_eq!(&output.response, &response, "entry {}: {:?}", index, step.command);
            prop_assert_eq!(&output.events, &events, "entry {}: {:?}", index, step.command);
            prop_assert_eq!(state.locks.check_invariants(), Ok(()));
            check_tokens(&mut tokens, &output, &state)?;
            assert_same_tables(&state, &model)?;
            let loaded = State::from_snapshot(&state.to_snapshot()).expect("snapshot loads");
            prop_assert_eq!(&loaded, &state);
        }
    }
}

/// The generator is only useful if it reaches the interesting states; this
/// fails if a change to it stops producing deadlocks (some with three or
/// more owners), wait timeouts or lease expiries.
#[test]
fn generated_histories_reach_deadlocks_timeouts_and_expiries() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let (mut deadlocks, mut long_cycles, mut timeouts, mut expiries) = (0, 0, 0, 0);
    for _ in 0..64 {
        let steps = steps().new_tree(&mut runner).expect("generates").current();
        let mut state = State::default();
        let mut store = MemStore::default();
        let mut time_ms = 1_000;
        for (i, step) in steps.iter().enumerate() {
            time_ms += step.advance_ms;
            for event in
                state.apply(&mut store, i as u64 + 1, &Request { time_ms, command: step.command.clone() }).events
            {
                match event {
                    Event::LockDeadlock { cycle, .. } => {
                        deadlocks += 1;
                        long_cycles += usize::from(cycle.len() >= 3);
                    }
                    Event::LockWaitTimedOut { .. } => timeouts += 1,
                    Event::LockExpired { .. } => expiries += 1,
                    _ => {}
                }
            }
        }
    }
    let counts = format!("deadlocks {deadlocks} ({long_cycles} long), timeouts {timeouts}, expiries {expiries}");
    assert!(deadlocks > 0 && long_cycles > 0 && timeouts > 0 && expiries > 0, "{counts}");
}
