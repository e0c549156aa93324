//! The lock table: shared/exclusive leased locks with fair FIFO waiting,
//! fencing tokens and deadlock detection on a wait-for graph.
//!
//! Rules:
//! - Compatibility: shared with shared only; exclusive with nothing.
//! - Fairness: a request is granted at once only if it is compatible with
//!   every holder AND no one is waiting for the resource (so a stream of
//!   shared requests cannot starve a queued exclusive one). Otherwise, with
//!   `wait_ms > 0`, it joins the FIFO queue; with `wait_ms == 0` it is a
//!   `Conflict`. Whenever holders change, waiters are granted from the
//!   front while compatible: one exclusive waiter alone, or every shared
//!   waiter up to the first exclusive one, together.
//! - Fencing token: the table counts the tokens it has issued since the
//!   cluster began, and every grant (immediate, from the queue, or an
//!   upgrade) takes the next one. So every grant gets a token greater than
//!   every earlier grant's, of any resource, including grants made by the
//!   same entry (shared waiters granted together get consecutive tokens, in
//!   grant order).
//! - Idempotence: acquiring what the owner already holds in the same mode
//!   (or shared while holding exclusive) returns the existing grant, same
//!   token, with the lease extended to `now + ttl_ms`.
//! - Upgrade: an owner holding shared that asks for exclusive is granted at
//!   once (new token) if it is the only holder; otherwise it waits, placed at
//!   the front of the queue behind earlier upgrades, and keeps its shared hold
//!   while waiting.
//! - An owner has at most one pending request per resource: re-sending a
//!   pending request returns `Queued` again and changes nothing.
//! - Leases: a grant expires at `now + ttl_ms`; `renew` extends all of an
//!   owner's holds. `expire` releases every hold with `expires_at_ms <= now`
//!   (event `LockExpired`) and drops every waiter with `deadline_ms <= now`
//!   (event `LockWaitTimedOut`), then grants what became grantable.
//! - Wait-for graph: a waiter has an edge to every holder of its resource that
//!   is incompatible with its request (other than itself) and to every waiter
//!   queued ahead of it whose mode is incompatible with its own.
//! - Deadlock: checked whenever a request is queued (the only time edges are
//!   added). While the new waiter is on a cycle, the youngest owner on the
//!   cycle (largest `first_seen` index: the owner whose first request in the
//!   cluster came last) is aborted: its pending request fails (event
//!   `LockDeadlock`), every lock it holds is released (events `LockReleased`)
//!   and waiters are granted. An owner with no holds and no pending requests
//!   is forgotten (its next request makes it "new" again).
//! - Release of a lock not held returns false and changes nothing.
//!
//! Details the rules leave open, settled here (the tests pin each one):
//! - Check order of an acquire: a hold that covers the request (idempotence)
//!   first, then a pending request on the resource (any mode, ttl or wait:
//!   `Queued`, nothing changes), then upgrade, then a fresh request.
//! - An idempotent re-acquire emits no event: nothing new is held, only the
//!   lease moves, as with `renew`.
//! - An upgrade by the only holder is granted at once even if others wait:
//!   they wait for that holder either way, so nobody is overtaken.
//! - "Upgrade" is not a stored flag: an exclusive waiter whose owner holds the
//!   resource (shared). If that hold is released or expires while it waits,
//!   it becomes an ordinary exclusive waiter where it stands. A new upgrade is
//!   placed behind the queue's leading upgrades; since two upgraders of one
//!   resource always form a cycle, at most one survives, at the front.
//! - A try-lock upgrade (`wait_ms == 0`) that cannot be granted is a
//!   `Conflict`; the shared hold stays.
//! - The cycle searched is the shortest one through the new waiter, the
//!   lexicographically smallest sequence of owner names among those (breadth-
//!   first search, out-edges taken by name). `LockDeadlock::cycle` lists it
//!   from the new waiter on.
//! - Aborting a victim fails every pending request it has (one
//!   `LockDeadlock` per resource, by name), then releases every hold (one
//!   `LockReleased` per resource, by name), then grants waiters of each
//!   resource touched, by name. If that grants the new waiter its request,
//!   `acquire` answers `Granted` (a `LockGranted` event was emitted too).
//! - `expire` emits every `LockExpired` (by expiry time, resource, owner),
//!   then every `LockWaitTimedOut` (by deadline, resource, owner), then the
//!   grants (by resource), so a waiter due to time out is never granted.
//! - Fencing, precisely: tokens are numbered across the whole table, so one
//!   resource's tokens have gaps, and they say nothing about log indices.
//!   A grant that its own entry takes back (after `expire` granted it, the
//!   command releases it, or aborts its owner as a deadlock victim, or
//!   upgrades it) still has a token of its own, and the grant that follows
//!   it gets a greater one: every `LockGranted` event's token is one more
//!   than the previous event's.
//! - `renew` sets each lease to `now + ttl_ms`, even when that is sooner.
//! - An owner is recorded (its `first_seen`) only when it is granted or
//!   queued; a `Conflict` leaves no trace.
//! - `now + ttl_ms` and `now + wait_ms` saturate instead of overflowing.
//!
//! Modules (private; `LockTable`'s methods are the interface): `records`
//! (the table's records and the bookkeeping that keeps its indexes in
//! step), `acquire`, `release`, `renew`, `grant` (issuing tokens, serving
//! the queue),
//! `expire`, `deadlock` (wait-for graph, cycle search, victim), `view`
//! (read-only queries), `invariants` (checked after every mutation in debug
//! builds), `snapshot` (loading one rebuilds the indexes).

mod acquire;
mod deadlock;
mod expire;
mod grant;
mod invariants;
mod records;
mod release;
mod renew;
mod snapshot;
mod view;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::event::Event;
use records::{Due, Owner, Resource};

/// Where and when an entry is being applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ctx {
    /// Log index of the entry (the `first_seen` of owners it records).
    pub index: u64,
    /// The state machine's clock: the leader's time, never decreasing.
    pub now_ms: u64,
}

/// Shared (many readers) or exclusive (one writer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    /// Compatible with other shared holds.
    Shared,
    /// Compatible with nothing.
    Exclusive,
}

/// A request to acquire a lock (`POST /locks/acquire`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcquireRequest {
    /// The lock's name.
    pub resource: String,
    /// Who asks (a client or transaction id).
    pub owner: String,
    /// Shared or exclusive.
    pub mode: LockMode,
    /// Lease length once granted.
    pub ttl_ms: u64,
    /// 0: try-lock; otherwise how long the request may wait in the queue.
    pub wait_ms: u64,
}

/// One holder of a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The holder.
    pub owner: String,
    /// How it holds the lock.
    pub mode: LockMode,
    /// Its fencing token.
    pub fencing_token: u64,
    /// When its lease runs out unless renewed.
    pub expires_at_ms: u64,
}

/// One queued request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiter {
    /// Who waits.
    pub owner: String,
    /// For what mode.
    pub mode: LockMode,
    /// When it started waiting.
    pub since_ms: u64,
    /// When it stops waiting (`since_ms + wait_ms`).
    pub deadline_ms: u64,
    /// Lease length once granted.
    pub ttl_ms: u64,
}

/// The result of an acquire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AcquireOutcome {
    /// Held now (possibly an existing grant, for a retry).
    Granted(Grant),
    /// Not available and the caller did not want to wait.
    Conflict,
    /// Queued: a later entry will grant it, time it out, or abort it.
    Queued,
    /// Queuing closed a cycle and this owner was chosen as the victim.
    Deadlock,
}

/// A lock's holders and waiters (`GET /locks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockView {
    /// The lock's name.
    pub resource: String,
    /// The mode it is held in, if held.
    pub mode: Option<LockMode>,
    /// Holders, in grant order.
    pub holders: Vec<Grant>,
    /// Waiters, in queue order.
    pub waiters: Vec<Waiter>,
}

/// An edge of the wait-for graph (`GET /locks/wait_for`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WaitEdge {
    /// The owner that waits.
    pub waiter: String,
    /// The owner it waits for (a holder, or an incompatible waiter ahead).
    pub holder: String,
    /// The resource the waiter asked for.
    pub resource: String,
}

/// Holds plus pending requests above which debug builds stop checking the
/// invariants after every mutation: the check costs O(table), which would
/// make a debug-built server quadratic under load. Tests stay far below.
const DEBUG_CHECK_RECORDS_MAX: usize = 2048;

/// All locks of the cluster. Deterministic: ordered maps only.
///
/// `resources`, the owners' `first_seen`, `deadlocks_resolved` and
/// `fencing_tokens_issued` are the state; everything else is an index
/// derived from them, kept so that no operation scans the whole table.
/// Snapshots carry only the state (the indexes are rebuilt and the result
/// checked when one is loaded).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "snapshot::Snapshot")]
pub struct LockTable {
    /// Every resource with a holder or a waiter, by name.
    resources: BTreeMap<String, Resource>,
    /// Every owner with a hold or a pending request, by name.
    owners: BTreeMap<String, Owner>,
    /// Every hold by lease end, so `expire` reads only what is due.
    #[serde(skip)]
    leases: BTreeSet<Due>,
    /// Every pending request by deadline, for the same reason.
    #[serde(skip)]
    waits: BTreeSet<Due>,
    /// Owners aborted as deadlock victims since the cluster began.
    deadlocks_resolved: u64,
    /// Fencing tokens issued since the cluster began: the last grant's
    /// token (the next grant gets one more).
    fencing_tokens_issued: u64,
}

impl LockTable {
    /// Applies an acquire. See the module rules.
    pub fn acquire(&mut self, ctx: Ctx, request: &AcquireRequest, events: &mut Vec<Event>) -> AcquireOutcome {
        let outcome = self.apply_acquire(ctx, request, events);
        self.debug_check();
        outcome
    }

    /// Releases `owner`'s hold on `resource`; false if it held none. A
    /// pending request of `owner` for `resource` is NOT cancelled.
    pub fn release(&mut self, ctx: Ctx, resource: &str, owner: &str, events: &mut Vec<Event>) -> bool {
        let released = self.apply_release(ctx, resource, owner, events);
        self.debug_check();
        released
    }

    /// Extends every lease of `owner` to `now + ttl_ms`; returns how many.
    pub fn renew(&mut self, ctx: Ctx, owner: &str, ttl_ms: u64) -> u64 {
        let renewed = self.apply_renew(ctx, owner, ttl_ms);
        self.debug_check();
        renewed
    }

    /// Releases expired leases and drops waiters past their deadline.
    pub fn expire(&mut self, ctx: Ctx, events: &mut Vec<Event>) {
        self.apply_expire(ctx, events);
        self.debug_check();
    }

    /// The earliest lease expiry or waiter deadline, so the leader knows
    /// when to propose a tick.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let lease = self.leases.first().map(|due| due.at_ms);
        let wait = self.waits.first().map(|due| due.at_ms);
        // `None` sorts first, so `min` alone would prefer "nothing due".
        lease.into_iter().chain(wait).min()
    }

    /// One lock's holders and waiters; `None` if neither exist.
    pub fn view(&self, resource: &str) -> Option<LockView> {
        self.resources.get(resource).map(|entry| entry.view(resource))
    }

    /// Every lock that has holders, by resource name. That is every lock
    /// the table remembers: a waiter never stands before an empty lock (it
    /// would have been granted), which `check_invariants` verifies.
    pub fn held(&self) -> Vec<LockView> {
        self.resources.iter().map(|(name, entry)| entry.view(name)).collect()
    }

    /// Every edge of the wait-for graph, sorted.
    pub fn wait_for(&self) -> Vec<WaitEdge> {
        self.edges()
    }

    /// Deadlocks resolved since the cluster began.
    pub fn deadlocks_resolved(&self) -> u64 {
        self.deadlocks_resolved
    }

    /// Number of (resource, owner) holds.
    pub fn hold_count(&self) -> usize {
        self.leases.len()
    }

    /// Panics, in debug builds, if a mutation broke an invariant: the cheap
    /// way to catch a bookkeeping slip where it happens, not entries later.
    /// Skipped above [`DEBUG_CHECK_RECORDS_MAX`].
    fn debug_check(&self) {
        let records = self.leases.len() + self.waits.len();
        if cfg!(debug_assertions) && records <= DEBUG_CHECK_RECORDS_MAX {
            if let Err(broken) = self.check_invariants() {
                panic!("lock table invariant broken: {broken}");
            }
        }
    }
}

impl LockMode {
    /// True if a hold in `self` and one in `other` may coexist.
    pub fn compatible(self, other: LockMode) -> bool {
        self == LockMode::Shared && other == LockMode::Shared
    }

    /// True if holding `self` already gives what a request for `wanted`
    /// asks (same mode, or exclusive for shared): such a request is a retry.
    pub fn covers(self, wanted: LockMode) -> bool {
        self == wanted || self == LockMode::Exclusive
    }
}

impl Grant {
    /// The `LockGranted` event announcing this grant of `resource`.
    fn granted_event(&self, resource: &str) -> Event {
        Event::LockGranted {
            resource: resource.to_string(),
            owner: self.owner.clone(),
            mode: self.mode,
            fencing_token: self.fencing_token,
            expires_at_ms: self.expires_at_ms,
        }
    }
}
