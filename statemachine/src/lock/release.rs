//! `release`: drop one hold and hand the lock to the next waiters at once.

use super::{Ctx, LockTable};
use crate::event::Event;

impl LockTable {
    /// The body of [`LockTable::release`]. The owner's pending request for
    /// the resource, if any, stays: releasing the shared hold behind a
    /// pending upgrade turns it into an ordinary exclusive request.
    pub(super) fn apply_release(&mut self, ctx: Ctx, resource: &str, owner: &str, events: &mut Vec<Event>) -> bool {
        if self.remove_hold(resource, owner).is_none() {
            return false;
        }
        events.push(Event::LockReleased { resource: resource.to_string(), owner: owner.to_string() });
        self.grant_waiters(ctx, resource, events);
        true
    }
}
