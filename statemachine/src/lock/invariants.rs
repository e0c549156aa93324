//! The table's invariants, checked after every mutation in debug builds
//! (`LockTable::debug_check`), on every snapshot load, and by the tests.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::records::Resource;
use super::{LockMode, LockTable};

impl LockTable {
    /// `Ok` if the table is consistent, else what is broken:
    /// - no conflicting holders (one exclusive alone, or only shared), each
    ///   owner at most once among a resource's holders and once among its
    ///   waiters;
    /// - an owner both holds and waits for a resource only as an upgrade
    ///   (holds shared, wants exclusive), and then stands at the front;
    /// - the front waiter is blocked by a holder (otherwise it would have
    ///   been granted);
    /// - every remembered resource has a holder, every owner record holds or
    ///   waits for something, and every index equals the one derived from
    ///   the resources;
    /// - every holder's fencing token is its own (no two holds share one)
    ///   and at most `fencing_tokens_issued`, so later grants exceed it;
    /// - the wait-for graph has no cycle.
    ///
    /// O(table size × log), plus O(queue length²) per queue for the graph:
    /// meant for debug builds and tests.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (name, entry) in &self.resources {
            check_resource(name, entry)?;
        }
        self.check_tokens()?;
        let derived = self.derive_indexes();
        if derived.leases != self.leases || derived.waits != self.waits {
            return Err("lease or wait index out of step with the resources".into());
        }
        let live = self.owners.iter().map(|(name, o)| (name, (&o.holds, &o.waits)));
        if !live.eq(derived.owners.iter().map(|(name, (holds, waits))| (name, (holds, waits)))) {
            return Err("owner records out of step with the resources".into());
        }
        self.check_acyclic()
    }

    /// Every holder's token is distinct and already issued.
    fn check_tokens(&self) -> Result<(), String> {
        let mut seen = BTreeSet::new();
        for (name, grant) in self.resources.iter().flat_map(|(name, e)| e.holders.iter().map(move |g| (name, g))) {
            if grant.fencing_token > self.fencing_tokens_issued || !seen.insert(grant.fencing_token) {
                return Err(format!(
                    "{name}: {} holds token {}, reused or not issued (last issued {})",
                    grant.owner, grant.fencing_token, self.fencing_tokens_issued
                ));
            }
        }
        Ok(())
    }

    /// Kahn's algorithm on the wait-for graph: peel owners nobody waits
    /// for; whatever cannot be peeled lies on or behind a cycle.
    fn check_acyclic(&self) -> Result<(), String> {
        let pairs: BTreeSet<(String, String)> = self.edges().into_iter().map(|e| (e.waiter, e.holder)).collect();
        let mut waited_on: BTreeMap<&str, usize> = self.owners.keys().map(|o| (o.as_str(), 0)).collect();
        for (_, holder) in &pairs {
            *waited_on.get_mut(holder.as_str()).ok_or("edge to an unknown owner")? += 1;
        }
        let mut free: VecDeque<&str> = waited_on.iter().filter(|(_, n)| **n == 0).map(|(o, _)| *o).collect();
        let mut peeled = 0;
        while let Some(owner) = free.pop_front() {
            peeled += 1;
            for (_, holder) in pairs.range((owner.to_string(), String::new())..).take_while(|(w, _)| w == owner) {
                let count = waited_on.get_mut(holder.as_str()).expect("counted above");
                *count -= 1;
                if *count == 0 {
                    free.push_back(holder);
                }
            }
        }
        if peeled != self.owners.len() {
            return Err(format!("wait-for graph has a cycle: {:?}", self.edges()));
        }
        Ok(())
    }
}

/// The per-resource invariants of [`LockTable::check_invariants`].
fn check_resource(name: &str, entry: &Resource) -> Result<(), String> {
    if entry.holders.is_empty() {
        return Err(format!("{name}: a resource without holders is remembered"));
    }
    let exclusive = entry.holders.iter().any(|g| g.mode == LockMode::Exclusive);
    if exclusive && entry.holders.len() > 1 {
        return Err(format!("{name}: exclusive hold shared with others: {:?}", entry.holders));
    }
    let holders: BTreeSet<&str> = entry.holders.iter().map(|g| g.owner.as_str()).collect();
    let waiters: BTreeSet<&str> = entry.waiters.iter().map(|w| w.owner.as_str()).collect();
    if holders.len() != entry.holders.len() || waiters.len() != entry.waiters.len() {
        return Err(format!("{name}: an owner holds or waits twice"));
    }
    for (position, waiter) in entry.waiters.iter().enumerate() {
        let Some(held) = entry.holder(&waiter.owner) else {
            continue;
        };
        if position != 0 || held.mode != LockMode::Shared || waiter.mode != LockMode::Exclusive {
            return Err(format!(
                "{name}: {} holds {:?} and waits at {position} other than as an upgrade",
                waiter.owner, held.mode
            ));
        }
    }
    match entry.waiters.front() {
        Some(front) if entry.admits(&front.owner, front.mode) => {
            Err(format!("{name}: front waiter {} is grantable but waits", front.owner))
        }
        _ => Ok(()),
    }
}
