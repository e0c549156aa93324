//! Rules (API.md, "Distributed locks"), one step each, on one 3-node
//! cluster, with requests spread over the leader and both followers:
//! - a try-lock on a taken lock is 409 `conflict`; defaults are exclusive,
//!   30 s lease, no wait;
//! - acquiring again what one holds returns the same grant (same fencing
//!   token) with the lease extended;
//! - release hands the lock to the next waiter at once;
//! - a blocking request sent again while it waits (a client retry through
//!   another node) queues once, and both copies get the same grant;
//! - shared holders coexist; an exclusive waiter gets the lock right after
//!   the last of them releases;
//! - waiters are served in arrival order (FIFO);
//! - a queued exclusive request is not starved by later shared ones, and
//!   leading shared waiters are granted together;
//! - shared -> exclusive by the same owner is an upgrade;
//! - renew extends every lease of the owner and says how many;
//! - a wait that runs out is 408 `timeout`, and that waiter is gone;
//! - `GET /locks` shapes (one lock, all locks, both consistencies);
//! - the lock metrics move.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::{answer_within, now_ms, Acquire, LockState};
use crate::common::cluster::Nodes;
use crate::common::{assert_contract_error, eventually, Cluster, ClusterOptions, CONVERGE_TIMEOUT};

/// Bound on release -> the waiter's answer: "at once" on a loaded 2-core box.
/// Far below every wait used here, so it cannot be confused with a timeout.
const HANDOVER_BOUND: Duration = Duration::from_secs(3);

/// How long queued test requests are willing to wait.
const WAIT_MS: u64 = 15_000;

/// Slack between this machine's clock readings and the leader's stamps.
const CLOCK_TOLERANCE_MS: u64 = 500;

#[tokio::test]
async fn lock_basics_over_a_three_node_cluster() {
    let cluster = Cluster::start("t10_locks_basics", ClusterOptions::default()).await;
    let n = cluster.nodes_by_role().await;
    let before = Counters::read(&cluster).await;

    try_lock_conflicts_and_retry_is_idempotent(&cluster, n).await;
    release_hands_the_lock_to_the_waiter(&cluster, n).await;
    a_resent_pending_request_queues_once(&cluster, n).await;
    shared_holders_then_exclusive_waiter(&cluster, n).await;
    waiters_are_served_in_fifo_order(&cluster, n).await;
    queued_exclusive_is_not_starved_by_later_shared(&cluster, n).await;
    leading_shared_waiters_are_granted_together(&cluster, n).await;
    shared_to_exclusive_is_an_upgrade(&cluster, n).await;
    renew_extends_every_lease_of_the_owner(&cluster, n).await;
    wait_timeout_is_408_and_the_waiter_is_gone(&cluster, n).await;
    get_locks_shapes(&cluster, n).await;
    lock_metrics_move(&cluster, n, before).await;
}

async fn try_lock_conflicts_and_retry_is_idempotent(cluster: &Cluster, n: Nodes) {
    let res = "basics:try";
    // Only the required fields: mode, lease and wait take their defaults.
    let request = Acquire::exclusive(res, "alice");
    let sent_at = now_ms();
    let reply = cluster
        .post(n.a, "/locks/acquire", &json!({"resource": res, "owner": "alice"}))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let answered_at = now_ms();
    let first = crate::client::Grant::parse(&reply, &request).unwrap_or_else(|e| panic!("defaults: {e}"));
    assert_within(first.expires_at_ms, sent_at + 30_000, answered_at + 30_000, "default lease of 30 s: expires_at_ms");

    // Taken: a try-lock (no wait_ms, or 0), exclusive or shared, is a conflict.
    let reply = cluster
        .post(n.b, "/locks/acquire", &json!({"resource": res, "owner": "bob"}))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_contract_error(&reply, 409, "conflict", "try-lock (defaults) on a lock alice holds, via a follower");
    let reply = cluster.acquire(n.leader, &Acquire::shared(res, "bob")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_contract_error(&reply, 409, "conflict", "shared try-lock on a lock alice holds exclusively, via the leader");
    let state = cluster.lock_state(n.b, res).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(state.holder_owners(), ["alice"], "after two refused try-locks: {}", state.raw);
    assert!(state.waiters.is_empty(), "a try-lock never queues: {}", state.raw);

    // A retry returns the same grant; the new lease (60 s) replaces the old one.
    let retry = Acquire::exclusive(res, "alice").ttl_ms(60_000);
    let again = cluster.acquire_granted(n.leader, &retry).await;
    assert_eq!(again.fencing_token, first.fencing_token, "a retry by the holder returns the same fencing token");
    assert!(
        again.expires_at_ms >= first.expires_at_ms + 25_000,
        "a retry extends the lease to now + 60 s: first {first:?}, retry {again:?}"
    );
    let state = cluster.lock_state(n.a, res).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(state.holders.len(), 1, "a retry does not add a second hold: {}", state.raw);
    assert_eq!(
        state.holders[0].expires_at_ms, again.expires_at_ms,
        "GET /locks shows the extended lease: {}",
        state.raw
    );

    cluster.release_expect(n.b, res, "alice", true).await;
    cluster.release_expect(n.a, res, "alice", false).await;
    cluster.release_expect(n.leader, res, "nobody-ever", false).await;
    assert_free(cluster, n.leader, res).await;
}

async fn release_hands_the_lock_to_the_waiter(cluster: &Cluster, n: Nodes) {
    let res = "basics:handover";
    let held = cluster.acquire_granted(n.a, &Acquire::exclusive(res, "holder")).await;
    let waiter = cluster.spawn_acquire(n.b, Acquire::exclusive(res, "waiter").wait_ms(WAIT_MS));
    cluster.wait_queued(n.leader, res, &["waiter"]).await;

    let released_at = Instant::now();
    cluster.release_expect(n.leader, res, "holder", true).await;
    let answer = answer_within(waiter, HANDOVER_BOUND, "release hands the lock to the waiter at once").await;
    let grant = answer.granted();
    eprintln!("t10_locks_basics: release -> waiter granted in {:.3?}", answer.at.duration_since(released_at));
    assert!(grant.fencing_token > held.fencing_token, "tokens grow: holder {held:?}, next {grant:?}");
    let state = cluster.lock_state(n.a, res).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((state.holder_owners(), state.waiter_owners()), (vec!["waiter"], vec![]), "{}", state.raw);
    cluster.release_expect(n.b, res, "waiter", true).await;
    assert_free(cluster, n.a, res).await;
}

async fn a_resent_pending_request_queues_once(cluster: &Cluster, n: Nodes) {
    let res = "basics:resent";
    cluster.acquire_granted(n.leader, &Acquire::exclusive(res, "holder")).await;
    let request = Acquire::exclusive(res, "retrier").wait_ms(WAIT_MS);
    let original = cluster.spawn_acquire(n.a, request.clone());
    cluster.wait_queued(n.leader, res, &["retrier"]).await;
    // The copy leaves no trace in the queue when right; the waits counter
    // tells when it has been committed and answered "queued".
    let waits = cluster.metric_sum(&[1, 2, 3], "dsync_lock_waits_total").await.unwrap_or_else(|e| panic!("{e}"));
    let resent = cluster.spawn_acquire(n.b, request);
    eventually("the re-sent request to be queued (dsync_lock_waits_total grows)", CONVERGE_TIMEOUT, async || {
        let now = cluster.metric_sum(&[1, 2, 3], "dsync_lock_waits_total").await?;
        if now > waits || resent.is_finished() {
            Ok(())
        } else {
            Err(format!("dsync_lock_waits_total still {now}"))
        }
    })
    .await;
    assert!(!resent.is_finished(), "the re-sent copy answered while holder still holds the lock");
    let behind = cluster.spawn_acquire(n.leader, Acquire::exclusive(res, "behind").wait_ms(WAIT_MS));
    let state = cluster.wait_queued(n.a, res, &["retrier", "behind"]).await;
    assert_eq!(state.holder_owners(), ["holder"], "{}", state.raw);

    cluster.release_expect(n.b, res, "holder", true).await;
    let what = "release hands the lock to the retrier, answering both copies of its request";
    let first = answer_within(original, HANDOVER_BOUND, what).await.granted();
    let second = answer_within(resent, HANDOVER_BOUND, what).await.granted();
    assert_eq!(first, second, "both copies of one owner's request report the same grant");
    cluster.release_expect(n.a, res, "retrier", true).await;
    answer_within(behind, HANDOVER_BOUND, "behind is next").await.granted();
    cluster.release_expect(n.leader, res, "behind", true).await;
    assert_free(cluster, n.b, res).await;
}

async fn shared_holders_then_exclusive_waiter(cluster: &Cluster, n: Nodes) {
    let res = "basics:rw";
    let r1 = cluster.acquire_granted(n.a, &Acquire::shared(res, "reader-1")).await;
    let r2 = cluster.acquire_granted(n.b, &Acquire::shared(res, "reader-2")).await;
    let state = cluster.lock_state(n.leader, res).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(state.mode.as_deref(), Some("shared"), "{}", state.raw);
    assert_eq!(state.holder_owners(), ["reader-1", "reader-2"], "both shared requests hold it: {}", state.raw);

    let writer = cluster.spawn_acquire(n.leader, Acquire::exclusive(res, "writer").wait_ms(WAIT_MS));
    cluster.wait_queued(n.a, res, &["writer"]).await;
    cluster.release_expect(n.b, res, "reader-1", true).await;
    let state = cluster.lock_state(n.leader, res).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (state.holder_owners(), state.waiter_owners()),
        (vec!["reader-2"], vec!["writer"]),
        "the writer waits while one reader still holds: {}",
        state.raw
    );
    assert!(!writer.is_finished(), "the writer's request answered while reader-2 still held the lock");

    let released_at = Instant::now();
    cluster.release_expect(n.a, res, "reader-2", true).await;
    let answer = answer_within(writer, HANDOVER_BOUND, "the last reader's release hands the lock to the writer").await;
    let grant = answer.granted();
    eprintln!(
        "t10_locks_basics: last reader released -> writer granted in {:.3?}",
        answer.at.duration_since(released_at)
    );
    assert!(grant.fencing_token > r1.fencing_token.max(r2.fencing_token), "tokens grow: {r1:?} {r2:?} -> {grant:?}");
    cluster.release_expect(n.b, res, "writer", true).await;
    assert_free(cluster, n.leader, res).await;
}

async fn waiters_are_served_in_fifo_order(cluster: &Cluster, n: Nodes) {
    let res = "basics:fifo";
    let first = cluster.acquire_granted(n.leader, &Acquire::exclusive(res, "first")).await;
    let owners = ["w1", "w2", "w3"];
    let via = [n.a, n.b, n.leader];
    let mut handles = Vec::new();
    for (i, owner) in owners.iter().enumerate() {
        let queued_after = now_ms();
        handles.push(cluster.spawn_acquire(via[i], Acquire::exclusive(res, owner).wait_ms(WAIT_MS)));
        let state = cluster.wait_queued(n.a, res, &owners[..=i]).await;
        let waiter = &state.waiters[i];
        assert_eq!((waiter.mode.as_str(), waiter.ttl_ms), ("exclusive", 30_000), "waiter {owner}: {}", state.raw);
        assert_eq!(
            waiter.deadline_ms,
            waiter.since_ms + WAIT_MS,
            "waiter {owner}: deadline = since + wait_ms: {}",
            state.raw
        );
        assert_within(waiter.since_ms, queued_after, now_ms(), &format!("waiter {owner}'s since_ms"));
    }

    let mut previous = ("first", first.fencing_token);
    for (i, handle) in handles.into_iter().enumerate() {
        cluster.release_expect(via[(i + 1) % 3], res, previous.0, true).await;
        let answer = answer_within(handle, HANDOVER_BOUND, &format!("{} is next in line", owners[i])).await;
        let grant = answer.granted();
        assert!(grant.fencing_token > previous.1, "tokens grow: {previous:?} -> {grant:?}");
        let state = cluster.lock_state(n.b, res).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (state.holder_owners(), state.waiter_owners()),
            (vec![owners[i]], owners[i + 1..].to_vec()),
            "FIFO: after {}'s release {} holds and the rest still wait in order: {}",
            previous.0,
            owners[i],
            state.raw
        );
        previous = (owners[i], grant.fencing_token);
    }
    cluster.release_expect(n.a, res, "w3", true).await;
    assert_free(cluster, n.a, res).await;
}

async fn queued_exclusive_is_not_starved_by_later_shared(cluster: &Cluster, n: Nodes) {
    let res = "basics:starve";
    cluster.acquire_granted(n.a, &Acquire::shared(res, "reader-1")).await;
    let writer = cluster.spawn_acquire(n.b, Acquire::exclusive(res, "writer").wait_ms(WAIT_MS));
    cluster.wait_queued(n.leader, res, &["writer"]).await;

    // Compatible with the holder, but a writer waits: not granted.
    let reply = cluster.acquire(n.leader, &Acquire::shared(res, "reader-2")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_contract_error(&reply, 409, "conflict", "shared try-lock behind a queued exclusive request");
    let late_reader = cluster.spawn_acquire(n.a, Acquire::shared(res, "reader-3").wait_ms(WAIT_MS));
    let state = cluster.wait_queued(n.b, res, &["writer", "reader-3"]).await;
    assert_eq!(state.holder_owners(), ["reader-1"], "the late reader queues behind the writer: {}", state.raw);

    cluster.release_expect(n.b, res, "reader-1", true).await;
    let writer = answer_within(writer, HANDOVER_BOUND, "the writer is served before the later reader").await.granted();
    let state = cluster.lock_state(n.leader, res).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (state.holder_owners(), state.waiter_owners()),
        (vec!["writer"], vec!["reader-3"]),
        "no writer starvation: {}",
        state.raw
    );
    cluster.release_expect(n.a, res, "writer", true).await;
    let reader = answer_within(late_reader, HANDOVER_BOUND, "the late reader follows the writer").await.granted();
    assert!(reader.fencing_token > writer.fencing_token, "tokens grow: {writer:?} -> {reader:?}");
    cluster.release_expect(n.leader, res, "reader-3", true).await;
    assert_free(cluster, n.b, res).await;
}

async fn leading_shared_waiters_are_granted_together(cluster: &Cluster, n: Nodes) {
    let res = "basics:batch";
    let gate = cluster.acquire_granted(n.leader, &Acquire::exclusive(res, "gate")).await;
    let sa = cluster.spawn_acquire(n.a, Acquire::shared(res, "sa").wait_ms(WAIT_MS));
    cluster.wait_queued(n.leader, res, &["sa"]).await;
    let sb = cluster.spawn_acquire(n.b, Acquire::shared(res, "sb").wait_ms(WAIT_MS));
    cluster.wait_queued(n.leader, res, &["sa", "sb"]).await;
    let xw = cluster.spawn_acquire(n.leader, Acquire::exclusive(res, "xw").wait_ms(WAIT_MS));
    cluster.wait_queued(n.leader, res, &["sa", "sb", "xw"]).await;

    cluster.release_expect(n.a, res, "gate", true).await;
    let what = "the gate's release grants both leading shared waiters";
    let sa = answer_within(sa, HANDOVER_BOUND, what).await.granted();
    let sb = answer_within(sb, HANDOVER_BOUND, what).await.granted();
    assert!(
        sa.fencing_token > gate.fencing_token && sb.fencing_token > gate.fencing_token,
        "{gate:?} -> {sa:?}, {sb:?}"
    );
    let state = cluster.lock_state(n.b, res).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (state.mode.as_deref(), state.holder_owners(), state.waiter_owners()),
        (Some("shared"), vec!["sa", "sb"], vec!["xw"]),
        "{}",
        state.raw
    );
    cluster.release_expect(n.b, res, "sa", true).await;
    cluster.release_expect(n.a, res, "sb", true).await;
    answer_within(xw, HANDOVER_BOUND, "the exclusive waiter follows the readers").await.granted();
    cluster.release_expect(n.leader, res, "xw", true).await;
    assert_free(cluster, n.a, res).await;
}

async fn shared_to_exclusive_is_an_upgrade(cluster: &Cluster, n: Nodes) {
    // Sole shared holder: the upgrade is immediate, with a new token.
    let res = "basics:upgrade-solo";
    let shared = cluster.acquire_granted(n.a, &Acquire::shared(res, "solo")).await;
    let exclusive = cluster.acquire_granted(n.b, &Acquire::exclusive(res, "solo")).await;
    assert!(exclusive.fencing_token > shared.fencing_token, "an upgrade is a new grant: {shared:?} -> {exclusive:?}");
    let state = cluster.lock_state(n.leader, res).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((state.mode.as_deref(), state.holder_owners()), (Some("exclusive"), vec!["solo"]), "{}", state.raw);
    cluster.release_expect(n.leader, res, "solo", true).await;
    assert_free(cluster, n.a, res).await;

    // Another shared holder: the upgrade waits for it.
    let res = "basics:upgrade-wait";
    cluster.acquire_granted(n.a, &Acquire::shared(res, "up")).await;
    let other = cluster.acquire_granted(n.b, &Acquire::shared(res, "other")).await;
    let upgrade = cluster.spawn_acquire(n.leader, Acquire::exclusive(res, "up").wait_ms(WAIT_MS));
    let state = cluster.wait_queued(n.a, res, &["up"]).await;
    assert!(state.holder_owners().contains(&"other"), "other still holds while up waits: {}", state.raw);
    cluster.release_expect(n.a, res, "other", true).await;
    let grant =
        answer_within(upgrade, HANDOVER_BOUND, "the upgrade follows the other reader's release").await.granted();
    assert!(grant.fencing_token > other.fencing_token, "{other:?} -> {grant:?}");
    let state = cluster.lock_state(n.b, res).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((state.mode.as_deref(), state.holder_owners()), (Some("exclusive"), vec!["up"]), "{}", state.raw);
    // One release frees an upgraded lock: no shared hold is left behind.
    cluster.release_expect(n.leader, res, "up", true).await;
    assert_free(cluster, n.a, res).await;
}

async fn renew_extends_every_lease_of_the_owner(cluster: &Cluster, n: Nodes) {
    let resources = ["basics:renew-1", "basics:renew-2"];
    let g1 = cluster.acquire_granted(n.a, &Acquire::exclusive(resources[0], "keeper").ttl_ms(5_000)).await;
    let g2 = cluster.acquire_granted(n.b, &Acquire::shared(resources[1], "keeper").ttl_ms(5_000)).await;
    let sent_at = now_ms();
    let renewed = cluster.renew(n.leader, "keeper", 60_000).await.unwrap_or_else(|e| panic!("{e}"));
    let answered_at = now_ms();
    assert_eq!(renewed, 2, "renew counts the owner's two locks");
    for (res, grant) in resources.iter().zip([g1, g2]) {
        let state = cluster.lock_state(n.a, res).await.unwrap_or_else(|e| panic!("{e}"));
        let holder = &state.holders[0];
        assert_eq!(holder.fencing_token, grant.fencing_token, "renew keeps the grant's token: {}", state.raw);
        assert_within(holder.expires_at_ms, sent_at + 60_000, answered_at + 60_000, &format!("{res} renewed lease"));
    }
    assert_eq!(cluster.renew(n.a, "holds-nothing", 60_000).await.unwrap_or_else(|e| panic!("{e}")), 0);
    for res in resources {
        cluster.release_expect(n.b, res, "keeper", true).await;
    }
    assert_eq!(cluster.renew(n.b, "keeper", 60_000).await.unwrap_or_else(|e| panic!("{e}")), 0, "renew after release");
}

async fn wait_timeout_is_408_and_the_waiter_is_gone(cluster: &Cluster, n: Nodes) {
    let res = "basics:timeout";
    cluster.acquire_granted(n.leader, &Acquire::exclusive(res, "holder")).await;
    let request = Acquire::exclusive(res, "impatient").wait_ms(1_000);
    let started = Instant::now();
    let reply = cluster.acquire(n.a, &request).await.unwrap_or_else(|e| panic!("{e}"));
    let waited = started.elapsed();
    eprintln!("t10_locks_basics: a 1000 ms wait answered after {waited:.3?}: {reply}");
    assert_contract_error(&reply, 408, "timeout", "acquire with wait_ms 1000 on a held lock");
    assert!(
        waited >= Duration::from_millis(950),
        "the request answered 408 after {waited:?}, before its wait_ms ran out"
    );
    assert!(waited <= Duration::from_millis(1_000) + HANDOVER_BOUND, "the wait ran {waited:?} for wait_ms 1000");
    let state = cluster.lock_state(n.b, res).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((state.holder_owners(), state.waiter_owners()), (vec!["holder"], vec![]), "{}", state.raw);
    // The timed-out waiter is never granted: releasing frees the lock.
    cluster.release_expect(n.b, res, "holder", true).await;
    assert_free(cluster, n.leader, res).await;
    cluster.release_expect(n.a, res, "impatient", false).await;
}

async fn get_locks_shapes(cluster: &Cluster, n: Nodes) {
    let free = cluster.get_ok(n.a, "/locks?resource=basics:never-used").await.unwrap_or_else(|e| panic!("{e}"));
    let expected_free = json!({"resource": "basics:never-used", "mode": null, "holders": [], "waiters": []});
    assert_eq!(strip_unknown(&free, &expected_free), expected_free, "an unknown lock is free: {free}");

    let x = cluster.acquire_granted(n.a, &Acquire::exclusive("shape:x", "o-x").ttl_ms(20_000)).await;
    cluster.acquire_granted(n.b, &Acquire::shared("shape:s", "o-s1")).await;
    cluster.acquire_granted(n.leader, &Acquire::shared("shape:s", "o-s2")).await;
    let queued_after = now_ms();
    let waiter = cluster.spawn_acquire(n.b, Acquire::shared("shape:x", "o-w").ttl_ms(7_000).wait_ms(10_000));
    cluster.wait_queued(n.leader, "shape:x", &["o-w"]).await;

    let body = cluster.get_ok(n.b, "/locks?resource=shape%3Ax").await.unwrap_or_else(|e| panic!("{e}"));
    let since = body["waiters"][0]["since_ms"].as_u64().unwrap_or_else(|| panic!("no waiters[0].since_ms: {body}"));
    assert_within(since, queued_after, now_ms(), "since_ms of the waiter");
    let expected = json!({
        "resource": "shape:x",
        "mode": "exclusive",
        "holders": [{"owner": "o-x", "mode": "exclusive", "fencing_token": x.fencing_token, "expires_at_ms": x.expires_at_ms}],
        "waiters": [{"owner": "o-w", "mode": "shared", "since_ms": since, "deadline_ms": since + 10_000, "ttl_ms": 7_000}],
    });
    assert_eq!(strip_unknown(&body, &expected), expected, "GET /locks?resource=shape:x (the full body: {body})");
    let linearizable =
        cluster.lock_state_at(n.a, "shape:x", Some("linearizable")).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(strip_unknown(&linearizable.raw, &expected), expected, "consistency=linearizable is the default");

    // All held locks, from the leader and from each follower's own state.
    let all = cluster.held_locks(n.leader, None).await.unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = all.iter().map(|l| l.resource.as_str()).collect();
    assert_eq!(names.len(), 2, "GET /locks lists exactly the two held locks: {names:?}");
    let by_name = |locks: &[LockState], name: &str| locks.iter().find(|l| l.resource == name).cloned();
    let listed_x = by_name(&all, "shape:x").unwrap_or_else(|| panic!("GET /locks lacks shape:x: {names:?}"));
    assert_eq!(strip_unknown(&listed_x.raw, &expected), expected, "shape:x inside GET /locks");
    let listed_s = by_name(&all, "shape:s").unwrap_or_else(|| panic!("GET /locks lacks shape:s: {names:?}"));
    assert_eq!((listed_s.mode.as_deref(), listed_s.holder_owners()), (Some("shared"), vec!["o-s1", "o-s2"]));
    for id in [n.a, n.b] {
        let what = format!("node{id}'s local GET /locks to show shape:x and shape:s");
        eventually(what, CONVERGE_TIMEOUT, async || {
            let local = cluster.held_locks(id, Some("local")).await?;
            match (by_name(&local, "shape:x"), by_name(&local, "shape:s")) {
                (Some(lx), Some(ls)) if lx == listed_x && ls == listed_s => Ok(()),
                (lx, ls) => Err(format!("shape:x {lx:?}, shape:s {ls:?}")),
            }
        })
        .await;
    }

    cluster.release_expect(n.leader, "shape:x", "o-x", true).await;
    answer_within(waiter, HANDOVER_BOUND, "o-w gets shape:x").await.granted();
    for (res, owner) in [("shape:x", "o-w"), ("shape:s", "o-s1"), ("shape:s", "o-s2")] {
        cluster.release_expect(n.a, res, owner, true).await;
    }
    let all = cluster.held_locks(n.b, None).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(all.is_empty(), "every step released what it took, yet GET /locks lists {all:?}");
}

/// The lock counters this test moves (summed over the nodes: a counter is
/// per process, and the contract does not say which node counts).
const COUNTERS: [&str; 4] = [
    "dsync_lock_grants_total",
    "dsync_lock_waits_total",
    "dsync_lock_timeouts_total",
    // A histogram: its count of observations.
    "dsync_lock_acquire_duration_seconds",
];

/// Sums over all nodes of [`COUNTERS`], in that order.
struct Counters([f64; 4]);

impl Counters {
    async fn read(cluster: &Cluster) -> Counters {
        let mut values = [0.0; 4];
        for (value, name) in values.iter_mut().zip(COUNTERS) {
            *value = cluster.metric_sum(&[1, 2, 3], name).await.unwrap_or_else(|e| panic!("{e}"));
        }
        Counters(values)
    }
}

async fn lock_metrics_move(cluster: &Cluster, n: Nodes, before: Counters) {
    // Lower bounds of what the steps above did (each counted once at least,
    // on whichever node counts it).
    let after = Counters::read(cluster).await;
    let grew = |i: usize| after.0[i] - before.0[i];
    assert!(grew(0) >= 20.0, "dsync_lock_grants_total grew by {} over 20+ grants", grew(0));
    assert!(grew(1) >= 10.0, "dsync_lock_waits_total grew by {} over 10+ queued requests", grew(1));
    assert!(grew(2) >= 1.0, "dsync_lock_timeouts_total grew by {} over one 408", grew(2));
    assert!(grew(3) >= 20.0, "dsync_lock_acquire_duration_seconds observed {} acquires over 20+ grants", grew(3));

    // The gauge follows what is held, on every node (each has the state).
    for (i, res) in ["metrics:1", "metrics:2"].iter().enumerate() {
        cluster.acquire_granted(if i == 0 { n.a } else { n.b }, &Acquire::exclusive(res, "gauge")).await;
    }
    for id in [n.leader, n.a, n.b] {
        wait_gauge(cluster, id, 2.0).await;
    }
    for res in ["metrics:1", "metrics:2"] {
        cluster.release_expect(n.leader, res, "gauge", true).await;
    }
    for id in [n.leader, n.a, n.b] {
        wait_gauge(cluster, id, 0.0).await;
    }

    let text = cluster.get(n.leader, "/metrics?format=prometheus").await.unwrap_or_else(|e| panic!("{e}")).text;
    for (name, kind) in [
        ("dsync_lock_acquire_duration_seconds", "histogram"),
        ("dsync_lock_grants_total", "counter"),
        ("dsync_lock_waits_total", "counter"),
        ("dsync_lock_timeouts_total", "counter"),
        ("dsync_locks_held", "gauge"),
    ] {
        let line = format!("# TYPE {name} {kind}");
        assert!(text.contains(&line), "the leader's Prometheus text lacks `{line}`");
    }
}

async fn wait_gauge(cluster: &Cluster, id: u64, expected: f64) {
    let what = format!("node{id}'s dsync_locks_held to be {expected}");
    eventually(what, CONVERGE_TIMEOUT, async || match cluster.metric(id, "dsync_locks_held").await? {
        Some(value) if value == expected => Ok(()),
        other => Err(format!("dsync_locks_held = {other:?}")),
    })
    .await;
}

/// Waits for nothing: a linearizable read right after the last release.
async fn assert_free(cluster: &Cluster, id: u64, res: &str) {
    let state = cluster.lock_state(id, res).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(state.is_free(), "{res} should be free now: {}", state.raw);
}

/// Asserts `low - tolerance <= value <= high + tolerance` (clock readings
/// here bracket a stamp taken on the leader).
fn assert_within(value: u64, low: u64, high: u64, what: &str) {
    assert!(
        value + CLOCK_TOLERANCE_MS >= low && value <= high + CLOCK_TOLERANCE_MS,
        "{what} = {value}, expected within [{low}, {high}] (± {CLOCK_TOLERANCE_MS} ms)"
    );
}

/// `body` restricted to the keys `expected` names, recursively through
/// objects and arrays: unknown fields are allowed by the contract.
fn strip_unknown(body: &serde_json::Value, expected: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match (body, expected) {
        (Value::Object(got), Value::Object(want)) => Value::Object(
            want.keys().filter_map(|k| got.get(k).map(|v| (k.clone(), strip_unknown(v, &want[k])))).collect(),
        ),
        (Value::Array(got), Value::Array(want)) if got.len() == want.len() => {
            Value::Array(got.iter().zip(want).map(|(g, w)| strip_unknown(g, w)).collect())
        }
        _ => body.clone(),
    }
}
