//! `expire`: time passing. Run before every entry's command, so it must
//! cost nothing when nothing is due: it reads the two time-ordered indexes
//! only up to `now`.

use std::collections::BTreeSet;

use super::records::Due;
use super::{Ctx, LockTable};
use crate::event::Event;

impl LockTable {
    /// The body of [`LockTable::expire`]. Every removal comes before any
    /// grant, so a waiter whose deadline has passed is never granted, and a
    /// lease that ran out never blocks a waiter granted by the same entry.
    pub(super) fn apply_expire(&mut self, ctx: Ctx, events: &mut Vec<Event>) {
        let mut touched = BTreeSet::new();
        for Due { resource, owner, .. } in due(&self.leases, ctx.now_ms) {
            self.remove_hold(&resource, &owner);
            events.push(Event::LockExpired { resource: resource.clone(), owner });
            touched.insert(resource);
        }
        for Due { resource, owner, .. } in due(&self.waits, ctx.now_ms) {
            self.remove_waiter(&resource, &owner);
            events.push(Event::LockWaitTimedOut { resource: resource.clone(), owner });
            touched.insert(resource);
        }
        for resource in touched {
            self.grant_waiters(ctx, &resource, events);
        }
    }
}

/// The keys of `index` due at `now_ms` (at or before it), earliest first.
fn due(index: &BTreeSet<Due>, now_ms: u64) -> Vec<Due> {
    index.iter().take_while(|due| due.at_ms <= now_ms).cloned().collect()
}
