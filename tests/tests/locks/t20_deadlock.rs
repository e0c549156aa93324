//! Rule (API.md, "Distributed locks", deadlocks): a request that closes a
//! cycle in the wait-for graph is detected at once (not when waits run out).
//! Exactly one owner of the cycle is aborted, the youngest (whose first
//! request in the cluster came last): its pending request fails with 409
//! `deadlock` and its locks are released, so the others proceed. An owner
//! with no locks and no pending requests is forgotten, so it is young again
//! when it comes back. Afterwards the wait-for graph has no edge left and
//! `deadlocks_resolved` has grown by one per cycle. Two shared holders that
//! both upgrade to exclusive are such a cycle too.
//!
//! The requests of each cycle go to different nodes; blocking requests wait
//! far longer than the detection bound, so a timeout cannot pass for a
//! detection.

use std::time::Duration;

use crate::client::{answer_within, Acquire, Edge, WaitFor};
use crate::common::{assert_contract_error, Cluster, ClusterOptions};

/// Bound on "closing request sent -> victim and winner answered".
const DETECT_BOUND: Duration = Duration::from_secs(3);

/// Wait of every blocking request here: far above [`DETECT_BOUND`].
const WAIT_MS: u64 = 20_000;

#[tokio::test]
async fn deadlock_aborts_exactly_the_youngest_owner() {
    let cluster = Cluster::start("t20_locks_deadlock", ClusterOptions::default()).await;
    cluster.wait_for_leader().await;
    let metric_before =
        cluster.metric_sum(&[1, 2, 3], "dsync_lock_deadlocks_total").await.unwrap_or_else(|e| panic!("{e}"));

    two_owners_the_youngest_closes_the_cycle(&cluster).await;
    two_owners_the_oldest_closes_the_cycle(&cluster).await;
    three_owners_the_middle_one_closes_the_cycle(&cluster).await;
    a_forgotten_owner_is_young_again(&cluster).await;
    two_readers_upgrading_deadlock(&cluster).await;

    let held = cluster.held_locks(2, None).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(held.is_empty(), "every scenario released what it took, yet GET /locks lists {held:?}");
    let metric_after =
        cluster.metric_sum(&[1, 2, 3], "dsync_lock_deadlocks_total").await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        metric_after - metric_before >= 5.0,
        "dsync_lock_deadlocks_total went from {metric_before} to {metric_after} over five deadlocks"
    );
    let leader = cluster.wait_for_leader().await;
    let text = cluster.get(leader, "/metrics?format=prometheus").await.unwrap_or_else(|e| panic!("{e}")).text;
    assert!(
        text.contains("# TYPE dsync_lock_deadlocks_total counter"),
        "Prometheus text lacks dsync_lock_deadlocks_total"
    );
}

/// old holds a, young holds b; old waits for b; young asks for a: young,
/// the requester, is the victim; old gets b.
async fn two_owners_the_youngest_closes_the_cycle(cluster: &Cluster) {
    let before = graph(cluster, 1).await;
    cluster.acquire_granted(1, &Acquire::exclusive("dl1:a", "dl1-old")).await;
    cluster.acquire_granted(2, &Acquire::exclusive("dl1:b", "dl1-young")).await;
    let old_waits = cluster.spawn_acquire(3, Acquire::exclusive("dl1:b", "dl1-old").wait_ms(WAIT_MS));
    cluster.wait_queued(1, "dl1:b", &["dl1-old"]).await;
    assert_edges(cluster, 2, &[("dl1-old", "dl1-young", "dl1:b")], "dl1-old waits for dl1-young").await;

    let young_closes = cluster.spawn_acquire(1, Acquire::exclusive("dl1:a", "dl1-young").wait_ms(WAIT_MS));
    let victim = answer_within(young_closes, DETECT_BOUND, "dl1-young closed the cycle and is the youngest").await;
    assert_contract_error(victim.reply(), 409, "deadlock", "dl1-young (youngest) closing a 2-owner cycle");
    let winner = answer_within(old_waits, DETECT_BOUND, "the victim's locks go to dl1-old").await;
    winner.granted();

    assert_holds(cluster, 3, "dl1:a", &["dl1-old"], &[]).await;
    assert_holds(cluster, 3, "dl1:b", &["dl1-old"], &[]).await;
    assert_resolved_one_more(cluster, 2, &before).await;
    release_all(cluster, &[("dl1:a", "dl1-old"), ("dl1:b", "dl1-old")]).await;
    cluster.release_expect(3, "dl1:b", "dl1-young", false).await;
}

/// old holds a, young holds b; young waits for a; old asks for b and closes
/// the cycle: the victim is still young (its earlier pending request fails),
/// and old's closing request is granted.
async fn two_owners_the_oldest_closes_the_cycle(cluster: &Cluster) {
    let before = graph(cluster, 3).await;
    cluster.acquire_granted(2, &Acquire::exclusive("dl2:a", "dl2-old")).await;
    cluster.acquire_granted(3, &Acquire::exclusive("dl2:b", "dl2-young")).await;
    let young_waits = cluster.spawn_acquire(1, Acquire::exclusive("dl2:a", "dl2-young").wait_ms(WAIT_MS));
    cluster.wait_queued(2, "dl2:a", &["dl2-young"]).await;

    let old_closes = cluster.spawn_acquire(2, Acquire::exclusive("dl2:b", "dl2-old").wait_ms(WAIT_MS));
    let victim =
        answer_within(young_waits, DETECT_BOUND, "dl2-young is the youngest on the cycle dl2-old closed").await;
    assert_contract_error(
        victim.reply(),
        409,
        "deadlock",
        "dl2-young's pending request, when dl2-old closed the cycle",
    );
    let winner = answer_within(old_closes, DETECT_BOUND, "dl2-old's closing request gets the victim's lock").await;
    winner.granted();

    assert_holds(cluster, 1, "dl2:a", &["dl2-old"], &[]).await;
    assert_holds(cluster, 1, "dl2:b", &["dl2-old"], &[]).await;
    assert_resolved_one_more(cluster, 3, &before).await;
    release_all(cluster, &[("dl2:a", "dl2-old"), ("dl2:b", "dl2-old")]).await;
}

/// p holds x, q holds y, r holds z (first requests in that order). p waits
/// for y, r waits for x, then q asks for z: p -> q -> r -> p. r is the
/// victim; q gets z; p keeps waiting for y until q releases it.
async fn three_owners_the_middle_one_closes_the_cycle(cluster: &Cluster) {
    let before = graph(cluster, 1).await;
    cluster.acquire_granted(1, &Acquire::exclusive("dl3:x", "dl3-p")).await;
    cluster.acquire_granted(2, &Acquire::exclusive("dl3:y", "dl3-q")).await;
    cluster.acquire_granted(3, &Acquire::exclusive("dl3:z", "dl3-r")).await;
    let p_waits = cluster.spawn_acquire(2, Acquire::exclusive("dl3:y", "dl3-p").wait_ms(WAIT_MS));
    cluster.wait_queued(3, "dl3:y", &["dl3-p"]).await;
    let r_waits = cluster.spawn_acquire(1, Acquire::exclusive("dl3:x", "dl3-r").wait_ms(WAIT_MS));
    cluster.wait_queued(3, "dl3:x", &["dl3-r"]).await;
    let expected = [("dl3-p", "dl3-q", "dl3:y"), ("dl3-r", "dl3-p", "dl3:x")];
    assert_edges(cluster, 1, &expected, "two edges of the coming cycle").await;

    let q_closes = cluster.spawn_acquire(3, Acquire::exclusive("dl3:z", "dl3-q").wait_ms(WAIT_MS));
    let victim = answer_within(r_waits, DETECT_BOUND, "dl3-r is the youngest of the 3-owner cycle").await;
    assert_contract_error(victim.reply(), 409, "deadlock", "dl3-r's pending request, when dl3-q closed the cycle");
    let winner = answer_within(q_closes, DETECT_BOUND, "dl3-q gets dl3:z once dl3-r is aborted").await;
    winner.granted();

    // p is no longer on a cycle: it simply waits for q.
    assert!(!p_waits.is_finished(), "dl3-p's request answered, but dl3-q still holds dl3:y");
    assert_holds(cluster, 2, "dl3:y", &["dl3-q"], &["dl3-p"]).await;
    assert_holds(cluster, 2, "dl3:x", &["dl3-p"], &[]).await;
    assert_holds(cluster, 2, "dl3:z", &["dl3-q"], &[]).await;
    assert_edges(cluster, 1, &[("dl3-p", "dl3-q", "dl3:y")], "only p -> q is left").await;
    cluster.release_expect(1, "dl3:y", "dl3-q", true).await;
    answer_within(p_waits, DETECT_BOUND, "dl3-p follows dl3-q's release").await.granted();

    assert_resolved_one_more(cluster, 2, &before).await;
    release_all(cluster, &[("dl3:x", "dl3-p"), ("dl3:y", "dl3-p"), ("dl3:z", "dl3-q")]).await;
    cluster.release_expect(3, "dl3:z", "dl3-r", false).await;
}

/// e comes first, f second; e then releases everything (forgotten) and comes
/// back: now e is the younger one, and is the victim of the next cycle.
async fn a_forgotten_owner_is_young_again(cluster: &Cluster) {
    let before = graph(cluster, 2).await;
    cluster.acquire_granted(1, &Acquire::exclusive("dl4:e", "dl4-e")).await;
    cluster.acquire_granted(2, &Acquire::exclusive("dl4:f", "dl4-f")).await;
    cluster.release_expect(3, "dl4:e", "dl4-e", true).await;
    cluster.acquire_granted(3, &Acquire::exclusive("dl4:e", "dl4-e")).await;

    let f_waits = cluster.spawn_acquire(1, Acquire::exclusive("dl4:e", "dl4-f").wait_ms(WAIT_MS));
    cluster.wait_queued(2, "dl4:e", &["dl4-f"]).await;
    let e_closes = cluster.spawn_acquire(2, Acquire::exclusive("dl4:f", "dl4-e").wait_ms(WAIT_MS));
    let victim = answer_within(e_closes, DETECT_BOUND, "dl4-e, forgotten and back, is now the youngest").await;
    assert_contract_error(
        victim.reply(),
        409,
        "deadlock",
        "dl4-e (first seen before dl4-f, but forgotten after releasing everything) closing a cycle",
    );
    answer_within(f_waits, DETECT_BOUND, "dl4-f gets dl4:e once dl4-e is aborted").await.granted();

    assert_holds(cluster, 3, "dl4:e", &["dl4-f"], &[]).await;
    assert_holds(cluster, 3, "dl4:f", &["dl4-f"], &[]).await;
    assert_resolved_one_more(cluster, 1, &before).await;
    release_all(cluster, &[("dl4:e", "dl4-f"), ("dl4:f", "dl4-f")]).await;
}

async fn graph(cluster: &Cluster, id: u64) -> WaitFor {
    cluster.wait_for_graph(id).await.unwrap_or_else(|e| panic!("{e}"))
}

/// The wait-for graph seen by node `id` is exactly `expected`.
async fn assert_edges(cluster: &Cluster, id: u64, expected: &[(&str, &str, &str)], what: &str) {
    let mut expected: Vec<Edge> = expected
        .iter()
        .map(|(w, h, r)| Edge { waiter: (*w).into(), holder: (*h).into(), resource: (*r).into() })
        .collect();
    expected.sort();
    let seen = graph(cluster, id).await;
    assert_eq!(seen.edges, expected, "node{id} GET /locks/wait_for: {what}");
}

/// After a resolved deadlock: no edge left, one more deadlock resolved.
async fn assert_resolved_one_more(cluster: &Cluster, id: u64, before: &WaitFor) {
    let after = graph(cluster, id).await;
    assert!(after.edges.is_empty(), "node{id}: wait-for edges left after the deadlock was resolved: {:?}", after.edges);
    assert_eq!(
        after.deadlocks_resolved,
        before.deadlocks_resolved + 1,
        "node{id}: deadlocks_resolved after one more deadlock"
    );
}

async fn assert_holds(cluster: &Cluster, id: u64, res: &str, holders: &[&str], waiters: &[&str]) {
    let state = cluster.lock_state(id, res).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (state.holder_owners(), state.waiter_owners()),
        (holders.to_vec(), waiters.to_vec()),
        "node{id} GET /locks?resource={res}: {}",
        state.raw
    );
}

async fn release_all(cluster: &Cluster, holds: &[(&str, &str)]) {
    for (i, (res, owner)) in holds.iter().enumerate() {
        cluster.release_expect(1 + (i as u64 % 3), res, owner, true).await;
    }
}

/// Two readers of one resource both upgrade to exclusive: each waits for the
/// other's shared hold. The younger is aborted (its shared hold released
/// with it), and the older's upgrade is granted.
async fn two_readers_upgrading_deadlock(cluster: &Cluster) {
    let res = "dl5:doc";
    let before = graph(cluster, 3).await;
    let older_read = cluster.acquire_granted(1, &Acquire::shared(res, "dl5-older")).await;
    cluster.acquire_granted(2, &Acquire::shared(res, "dl5-younger")).await;
    let older_upgrades = cluster.spawn_acquire(3, Acquire::exclusive(res, "dl5-older").wait_ms(WAIT_MS));
    cluster.wait_queued(1, res, &["dl5-older"]).await;

    let younger_upgrades = cluster.spawn_acquire(2, Acquire::exclusive(res, "dl5-younger").wait_ms(WAIT_MS));
    let victim = answer_within(younger_upgrades, DETECT_BOUND, "two upgrades wait for each other").await;
    assert_contract_error(victim.reply(), 409, "deadlock", "dl5-younger upgrading while dl5-older upgrades");
    let grant = answer_within(older_upgrades, DETECT_BOUND, "dl5-younger's shared hold went with it").await.granted();
    assert!(grant.fencing_token > older_read.fencing_token, "the upgrade is a new grant: {older_read:?} -> {grant:?}");

    let state = cluster.lock_state(3, res).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (state.mode.as_deref(), state.holder_owners(), state.waiter_owners()),
        (Some("exclusive"), vec!["dl5-older"], vec![]),
        "{}",
        state.raw
    );
    assert_resolved_one_more(cluster, 1, &before).await;
    release_all(cluster, &[(res, "dl5-older")]).await;
    cluster.release_expect(2, res, "dl5-younger", false).await;
}
