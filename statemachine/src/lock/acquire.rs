//! `acquire`: a retry, a duplicate of a pending request, an upgrade, or a
//! fresh request, checked in that order (module rules and their details).

use super::{AcquireOutcome, AcquireRequest, Ctx, Grant, LockTable, Waiter};
use crate::event::Event;

impl LockTable {
    /// The body of [`LockTable::acquire`].
    pub(super) fn apply_acquire(
        &mut self,
        ctx: Ctx,
        request: &AcquireRequest,
        events: &mut Vec<Event>,
    ) -> AcquireOutcome {
        let entry = self.resources.get(&request.resource);
        let held = entry.and_then(|e| e.holder(&request.owner)).cloned();
        let pending = entry.is_some_and(|e| e.waiter_position(&request.owner).is_some());
        match held {
            Some(grant) if grant.mode.covers(request.mode) => self.retry(ctx, request, grant),
            _ if pending => AcquireOutcome::Queued,
            Some(_) => self.upgrade(ctx, request, events),
            None => self.fresh(ctx, request, events),
        }
    }

    /// Idempotence: the existing grant, same token, lease moved to `now + ttl`.
    fn retry(&mut self, ctx: Ctx, request: &AcquireRequest, held: Grant) -> AcquireOutcome {
        let grant = Grant { expires_at_ms: ctx.now_ms.saturating_add(request.ttl_ms), ..held };
        self.replace_hold(&request.resource, grant.clone());
        AcquireOutcome::Granted(grant)
    }

    /// Shared to exclusive: at once if the owner is the only holder (even with
    /// others queued: they wait for this owner either way), else it waits
    /// behind earlier upgrades, keeping its shared hold.
    fn upgrade(&mut self, ctx: Ctx, request: &AcquireRequest, events: &mut Vec<Event>) -> AcquireOutcome {
        let entry = &self.resources[&request.resource];
        if entry.holders.len() == 1 {
            let grant = self.new_grant(ctx, request);
            self.replace_hold(&request.resource, grant.clone());
            events.push(grant.granted_event(&request.resource));
            return AcquireOutcome::Granted(grant);
        }
        let position = entry.leading_upgrades();
        self.wait(ctx, request, position, events)
    }

    /// A request of an owner that neither holds nor waits for the resource:
    /// granted only if compatible with every holder and nobody waits.
    fn fresh(&mut self, ctx: Ctx, request: &AcquireRequest, events: &mut Vec<Event>) -> AcquireOutcome {
        let (free, queued) = match self.resources.get(&request.resource) {
            Some(e) => (e.admits(&request.owner, request.mode) && e.waiters.is_empty(), e.waiters.len()),
            None => (true, 0),
        };
        if !free {
            return self.wait(ctx, request, queued, events);
        }
        let grant = self.new_grant(ctx, request);
        self.add_hold(ctx.index, &request.resource, grant.clone());
        events.push(grant.granted_event(&request.resource));
        AcquireOutcome::Granted(grant)
    }

    /// Queues the request at `position`, or answers `Conflict` to a
    /// try-lock, then breaks every cycle the new edges closed.
    fn wait(&mut self, ctx: Ctx, request: &AcquireRequest, position: usize, events: &mut Vec<Event>) -> AcquireOutcome {
        if request.wait_ms == 0 {
            return AcquireOutcome::Conflict;
        }
        let waiter = Waiter {
            owner: request.owner.clone(),
            mode: request.mode,
            since_ms: ctx.now_ms,
            deadline_ms: ctx.now_ms.saturating_add(request.wait_ms),
            ttl_ms: request.ttl_ms,
        };
        self.add_waiter(ctx.index, &request.resource, position, waiter);
        if self.resolve_deadlocks(ctx, &request.owner, events) {
            return AcquireOutcome::Deadlock;
        }
        // Aborting another victim may have granted the request already.
        let entry = &self.resources[&request.resource];
        match entry.holder(&request.owner) {
            Some(grant) if entry.waiter_position(&request.owner).is_none() => AcquireOutcome::Granted(grant.clone()),
            _ => AcquireOutcome::Queued,
        }
    }

    /// Grants `request` now, by the entry at `ctx`: the next fencing token.
    fn new_grant(&mut self, ctx: Ctx, request: &AcquireRequest) -> Grant {
        self.issue_grant(&request.owner, request.mode, ctx.now_ms.saturating_add(request.ttl_ms))
    }
}
