//! `renew`: an owner's keepalive, moving every lease it has.

use super::{Ctx, Grant, LockTable};

impl LockTable {
    /// The body of [`LockTable::renew`]. Each lease is set to `now + ttl_ms`,
    /// sooner than before if the new ttl is shorter: the client asked for
    /// that lease length from now. Tokens and modes stay.
    pub(super) fn apply_renew(&mut self, ctx: Ctx, owner: &str, ttl_ms: u64) -> u64 {
        let Some(record) = self.owners.get(owner) else {
            return 0;
        };
        let expires_at_ms = ctx.now_ms.saturating_add(ttl_ms);
        let mut renewed = 0;
        for resource in record.holds.clone() {
            let held = self.resources[&resource].holder(owner).expect("owner index matches holders").clone();
            self.replace_hold(&resource, Grant { expires_at_ms, ..held });
            renewed += 1;
        }
        renewed
    }
}
