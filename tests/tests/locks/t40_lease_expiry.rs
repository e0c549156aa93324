//! Rule (API.md, "Distributed locks", leases): a lock whose lease runs out is
//! released by the cluster even if no request arrives, and the next waiter
//! gets it; an owner that keeps renewing keeps its lock past its first
//! lease. Expiry takes effect at the lease's end (never before, by the
//! leader's clock) and within a bounded delay after it.
//!
//! While waiting for an expiry the test sends nothing at all: the waiter's
//! own blocking request is the only one open. That holds across a leader
//! failover too: the new leader releases a lease that ran out, although no
//! request reaches it.

use std::time::Duration;

use crate::client::{answer_within, now_ms, Acquire};
use crate::common::{assert_contract_error, Cluster, ClusterOptions};

/// Short lease of the holders here. Long enough for the waiter to be seen
/// queued before it runs out on a loaded box.
const TTL_MS: u64 = 1_500;

/// Lease of the waiters once they get the lock.
const HEIR_TTL_MS: u64 = 30_000;

/// Bound on "lease end -> the waiter has the lock" (the contract: the
/// deadline plus a few hundred ms; more on a loaded 2-core box).
const EXPIRY_SLACK: Duration = Duration::from_secs(2);

/// Time for the survivors to elect a new leader (1 s election timeout).
const ELECTION_ALLOWANCE: Duration = Duration::from_secs(5);

/// Keepalive period of the renewing owner: several renewals per lease.
const RENEW_EVERY: Duration = Duration::from_millis(300);

#[tokio::test]
async fn unrenewed_leases_expire_even_across_failover_and_renewed_ones_are_kept() {
    let mut cluster = Cluster::start("t40_locks_lease", ClusterOptions::default()).await;
    let leader = cluster.wait_for_leader().await;
    let followers = cluster.followers_of(leader);
    let expiries_before =
        cluster.metric_sum(&[1, 2, 3], "dsync_lock_expiries_total").await.unwrap_or_else(|e| panic!("{e}"));

    unrenewed_lease_goes_to_the_waiter(&cluster, leader, followers[0], followers[1]).await;
    renewed_lease_is_kept(&cluster, leader, followers[0], followers[1]).await;

    let expiries_after =
        cluster.metric_sum(&[1, 2, 3], "dsync_lock_expiries_total").await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        expiries_after - expiries_before >= 2.0,
        "dsync_lock_expiries_total went from {expiries_before} to {expiries_after} over two expired leases"
    );
    let text = cluster.get(leader, "/metrics?format=prometheus").await.unwrap_or_else(|e| panic!("{e}")).text;
    assert!(
        text.contains("# TYPE dsync_lock_expiries_total counter"),
        "Prometheus text lacks dsync_lock_expiries_total"
    );

    lease_expires_after_leader_failover(&mut cluster, leader, followers[0], followers[1]).await;
}

async fn unrenewed_lease_goes_to_the_waiter(cluster: &Cluster, leader: u64, a: u64, b: u64) {
    let res = "lease:unrenewed";
    let held = cluster.acquire_granted(a, &Acquire::exclusive(res, "sleeper").ttl_ms(TTL_MS)).await;
    let heir = cluster.spawn_acquire(b, Acquire::exclusive(res, "heir").ttl_ms(HEIR_TTL_MS).wait_ms(10_000));
    cluster.wait_queued(leader, res, &["heir"]).await;

    // Nothing is sent from here until the heir's answer.
    let bound = Duration::from_millis(held.expires_at_ms.saturating_sub(now_ms())) + EXPIRY_SLACK;
    let answer = answer_within(heir, bound, "the sleeper's lease ran out and nobody else asked").await;
    let grant = answer.granted();
    let granted_at_ms = grant.expires_at_ms - HEIR_TTL_MS;
    eprintln!(
        "t40_locks_lease: lease end {} -> heir granted at {granted_at_ms} (leader's clock), answer {} ms after the lease end",
        held.expires_at_ms,
        answer.at_ms as i64 - held.expires_at_ms as i64
    );
    assert!(
        granted_at_ms >= held.expires_at_ms,
        "the heir was granted at {granted_at_ms}, before the sleeper's lease ended at {}",
        held.expires_at_ms
    );
    assert!(grant.fencing_token > held.fencing_token, "tokens grow: {held:?} -> {grant:?}");

    // The sleeper lost it: nothing to renew or release.
    assert_eq!(
        cluster.renew(leader, "sleeper", TTL_MS).await.unwrap_or_else(|e| panic!("{e}")),
        0,
        "renew after expiry"
    );
    cluster.release_expect(a, res, "sleeper", false).await;
    let state = cluster.lock_state(b, res).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((state.holder_owners(), state.waiter_owners()), (vec!["heir"], vec![]), "{}", state.raw);
    cluster.release_expect(b, res, "heir", true).await;
}

async fn renewed_lease_is_kept(cluster: &Cluster, leader: u64, a: u64, b: u64) {
    let res = "lease:renewed";
    let kept = cluster.acquire_granted(a, &Acquire::exclusive(res, "keeper").ttl_ms(TTL_MS)).await;
    let heir = cluster.spawn_acquire(b, Acquire::exclusive(res, "heir-2").ttl_ms(HEIR_TTL_MS).wait_ms(15_000));
    cluster.wait_queued(leader, res, &["heir-2"]).await;

    // Keep renewing until two more leases' worth past the original end.
    let renew_until_ms = kept.expires_at_ms + 2 * TTL_MS;
    let mut renewals = 0;
    while now_ms() < renew_until_ms {
        let via = [leader, a, b][renewals % 3];
        let renewed = cluster.renew(via, "keeper", TTL_MS).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            renewed, 1,
            "renewal #{renewals} via node{via} found no lease: it expired although renewed every {RENEW_EVERY:?}"
        );
        renewals += 1;
        tokio::time::sleep(RENEW_EVERY).await;
    }
    let state = cluster.lock_state(a, res).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (state.holder_owners(), state.waiter_owners()),
        (vec!["keeper"], vec!["heir-2"]),
        "after {renewals} renewals, {} ms past the original lease end: {}",
        now_ms().saturating_sub(kept.expires_at_ms),
        state.raw
    );
    let holder = &state.holders[0];
    assert_eq!(holder.fencing_token, kept.fencing_token, "renewal keeps the grant: {}", state.raw);
    assert!(holder.expires_at_ms > kept.expires_at_ms + TTL_MS, "the lease moved forward: {}", state.raw);
    assert!(!heir.is_finished(), "heir-2's request answered while the keeper still renewed");

    // Renewing stops: the renewed lease runs out like any other.
    let lease_end = holder.expires_at_ms;
    let bound = Duration::from_millis(lease_end.saturating_sub(now_ms())) + EXPIRY_SLACK;
    let answer = answer_within(heir, bound, "the keeper stopped renewing").await;
    let grant = answer.granted();
    let granted_at_ms = grant.expires_at_ms - HEIR_TTL_MS;
    assert!(
        granted_at_ms >= lease_end,
        "heir-2 was granted at {granted_at_ms}, before the renewed lease ended at {lease_end}"
    );
    cluster.release_expect(leader, res, "heir-2", true).await;
}

/// A lease held when the leader dies still ends: the new leader releases it
/// on its own, and the waiter (on a surviving follower) gets the lock. A
/// wait that runs out meanwhile ends in 408 the same way.
async fn lease_expires_after_leader_failover(cluster: &mut Cluster, leader: u64, a: u64, b: u64) {
    let res = "lease:failover";
    let held = cluster.acquire_granted(a, &Acquire::exclusive(res, "orphan").ttl_ms(2 * TTL_MS)).await;
    let heir = cluster.spawn_acquire(b, Acquire::exclusive(res, "heir-3").ttl_ms(HEIR_TTL_MS).wait_ms(20_000));
    cluster.wait_queued(b, res, &["heir-3"]).await;
    // And a wait that runs out meanwhile, on a lock whose lease does not.
    let kept = "lease:failover-kept";
    cluster.acquire_granted(b, &Acquire::exclusive(kept, "long").ttl_ms(60_000)).await;
    let impatient_wait_ms = 2 * TTL_MS;
    let impatient = cluster.spawn_acquire(a, Acquire::exclusive(kept, "impatient").wait_ms(impatient_wait_ms));
    let waiter = cluster.wait_queued(a, kept, &["impatient"]).await.waiters[0].clone();
    cluster.kill(leader);

    // Nothing is sent: the survivors elect a leader, which must see the due lease.
    let bound = Duration::from_millis(held.expires_at_ms.saturating_sub(now_ms())) + ELECTION_ALLOWANCE + EXPIRY_SLACK;
    let answer = answer_within(heir, bound, "the old leader died; the new one must expire the orphan's lease").await;
    let grant = answer.granted();
    let granted_at_ms = grant.expires_at_ms - HEIR_TTL_MS;
    eprintln!(
        "t40_locks_lease: after failover, heir-3 answered {} ms after the lease end",
        answer.at_ms as i64 - held.expires_at_ms as i64
    );
    assert!(
        granted_at_ms >= held.expires_at_ms,
        "heir-3 granted at {granted_at_ms}, before the lease end {}",
        held.expires_at_ms
    );
    assert!(grant.fencing_token > held.fencing_token, "tokens grow across terms: {held:?} -> {grant:?}");

    // The wait that ran out during the failover ended in 408, and that
    // waiter is gone: the holder's release frees the lock.
    let bound = Duration::from_millis(waiter.deadline_ms.saturating_sub(now_ms())) + ELECTION_ALLOWANCE + EXPIRY_SLACK;
    let answer = answer_within(impatient, bound, "a wait that ran out while the leader changed").await;
    assert_contract_error(answer.reply(), 408, "timeout", "acquire whose wait ran out during a leader failover");
    assert!(
        answer.at_ms >= waiter.deadline_ms,
        "408 at {}, before the wait's deadline {}",
        answer.at_ms,
        waiter.deadline_ms
    );
    let survivor = b;
    let state = cluster.lock_state(survivor, kept).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((state.holder_owners(), state.waiter_owners()), (vec!["long"], vec![]), "{}", state.raw);
    cluster.release_expect(a, kept, "long", true).await;
    let state = cluster.lock_state(survivor, kept).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(state.is_free(), "the timed-out waiter must never be granted: {}", state.raw);
}
