//! Making grants: issuing fencing tokens, and serving the queue (whenever
//! holders or waiters change, grant from the front while the front is
//! compatible with the holders).

use super::{Ctx, Grant, LockMode, LockTable};
use crate::event::Event;

impl LockTable {
    /// A new grant to `owner` in `mode` until `expires_at_ms`, with the next
    /// fencing token: one more than the last token issued, of any resource.
    /// Every grant (immediate, from the queue, an upgrade) is made here, so
    /// each gets a token greater than every earlier grant's.
    pub(super) fn issue_grant(&mut self, owner: &str, mode: LockMode, expires_at_ms: u64) -> Grant {
        self.fencing_tokens_issued += 1;
        Grant { owner: owner.to_string(), mode, fencing_token: self.fencing_tokens_issued, expires_at_ms }
    }

    /// Grants `resource`'s waiters from the front while compatible: one
    /// exclusive waiter alone (an upgrade when its owner is the only holder
    /// left), or every shared waiter up to the first exclusive one. Each
    /// gets its own token, so grants made together have consecutive tokens
    /// in grant order.
    pub(super) fn grant_waiters(&mut self, ctx: Ctx, resource: &str, events: &mut Vec<Event>) {
        while let Some(entry) = self.resources.get(resource) {
            let Some(front) = entry.waiters.front() else {
                return;
            };
            if !entry.admits(&front.owner, front.mode) {
                return;
            }
            let upgrade = entry.holder(&front.owner).is_some();
            let (owner, mode, expires_at_ms) =
                (front.owner.clone(), front.mode, ctx.now_ms.saturating_add(front.ttl_ms));
            let grant = self.issue_grant(&owner, mode, expires_at_ms);
            // The hold first, then the wait: removing the wait last keeps the
            // owner from being forgotten in between.
            if upgrade {
                self.replace_hold(resource, grant.clone());
            } else {
                self.add_hold(ctx.index, resource, grant.clone());
            }
            self.remove_waiter(resource, &grant.owner);
            events.push(grant.granted_event(resource));
        }
    }
}
