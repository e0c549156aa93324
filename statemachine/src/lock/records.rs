//! The table's records, and the only code that changes them.
//!
//! A hold lives in three places (its resource's `holders`, the `leases`
//! index, its owner's `holds`) and a pending request in three more, so every
//! change goes through the primitives below, which update all of them at
//! once. Removals also forget a resource with neither holders nor waiters and
//! an owner with neither holds nor pending requests: the table never grows
//! with names that no longer matter.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::{Grant, LockMode, LockTable, Waiter};

/// One resource's holders and queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Resource {
    /// Holders in grant order, the order `GET /locks` shows. A `Vec`: all
    /// holders but one are shared, and lookups by owner scan it.
    pub(super) holders: Vec<Grant>,
    /// Pending requests in service order (FIFO; an upgrade at the front).
    pub(super) waiters: VecDeque<Waiter>,
}

impl Resource {
    /// `owner`'s hold, if it has one.
    pub(super) fn holder(&self, owner: &str) -> Option<&Grant> {
        self.holders.iter().find(|grant| grant.owner == owner)
    }

    /// Where `owner`'s pending request stands in the queue, if it has one.
    pub(super) fn waiter_position(&self, owner: &str) -> Option<usize> {
        self.waiters.iter().position(|waiter| waiter.owner == owner)
    }

    /// True if `owner` could hold `mode` next to every other holder (its own
    /// hold does not count: an upgrade is not blocked by itself).
    pub(super) fn admits(&self, owner: &str, mode: LockMode) -> bool {
        self.holders.iter().all(|grant| grant.owner == owner || grant.mode.compatible(mode))
    }

    /// The mode the resource is held in (exclusive beats shared; they never
    /// mix), `None` if nobody holds it.
    pub(super) fn mode(&self) -> Option<LockMode> {
        self.holders.iter().map(|grant| grant.mode).max()
    }

    /// How many waiters at the front are upgrades (exclusive requests of
    /// owners holding the resource shared); a new upgrade goes behind them.
    pub(super) fn leading_upgrades(&self) -> usize {
        self.waiters.iter().take_while(|waiter| self.holder(&waiter.owner).is_some()).count()
    }
}

/// What the table remembers of one owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Owner {
    /// Log index of the entry that first granted or queued it since it was
    /// last forgotten: its age, which picks deadlock victims.
    pub(super) first_seen: u64,
    /// Resources it holds, so `renew` and an abort need not scan the table.
    #[serde(skip)]
    pub(super) holds: BTreeSet<String>,
    /// Resources it waits for: its out-edges in the wait-for graph start here.
    #[serde(skip)]
    pub(super) waits: BTreeSet<String>,
}

/// An index key: the time at which `owner`'s lease on (or wait for)
/// `resource` runs out. Ordered by time first, so the due ones come first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Due {
    /// Lease end or wait deadline.
    pub(super) at_ms: u64,
    /// The lock.
    pub(super) resource: String,
    /// Its holder or waiter.
    pub(super) owner: String,
}

impl Due {
    /// The key of `grant`'s lease on `resource`.
    pub(super) fn lease(resource: &str, grant: &Grant) -> Due {
        Due { at_ms: grant.expires_at_ms, resource: resource.to_string(), owner: grant.owner.clone() }
    }

    /// The key of `waiter`'s deadline on `resource`.
    pub(super) fn wait(resource: &str, waiter: &Waiter) -> Due {
        Due { at_ms: waiter.deadline_ms, resource: resource.to_string(), owner: waiter.owner.clone() }
    }
}

impl LockTable {
    /// Adds `grant` as the newest holder of `resource`. `index` (the entry
    /// being applied) becomes the owner's `first_seen` if it is new.
    pub(super) fn add_hold(&mut self, index: u64, resource: &str, grant: Grant) {
        debug_assert!(self.resources.get(resource).and_then(|r| r.holder(&grant.owner)).is_none());
        self.owner_entry(index, &grant.owner).holds.insert(resource.to_string());
        self.leases.insert(Due::lease(resource, &grant));
        self.resources.entry(resource.to_string()).or_default().holders.push(grant);
    }

    /// Replaces the owner's existing hold of `resource` by `grant`, keeping
    /// its place in grant order: an upgrade, or a lease moved by a renew.
    pub(super) fn replace_hold(&mut self, resource: &str, grant: Grant) {
        let held = self.resources.get_mut(resource).and_then(|r| r.holders.iter_mut().find(|g| g.owner == grant.owner));
        let held = held.expect("replace_hold: the owner holds the resource");
        self.leases.remove(&Due::lease(resource, held));
        self.leases.insert(Due::lease(resource, &grant));
        *held = grant;
    }

    /// Removes `owner`'s hold of `resource`, if any, and returns it.
    pub(super) fn remove_hold(&mut self, resource: &str, owner: &str) -> Option<Grant> {
        let entry = self.resources.get_mut(resource)?;
        let position = entry.holders.iter().position(|grant| grant.owner == owner)?;
        let grant = entry.holders.remove(position);
        self.leases.remove(&Due::lease(resource, &grant));
        if let Some(record) = self.owners.get_mut(owner) {
            record.holds.remove(resource);
        }
        self.forget_if_idle(resource, owner);
        Some(grant)
    }

    /// Queues `waiter` for `resource` at `position` (0 is the front).
    /// `index` becomes the owner's `first_seen` if it is new.
    pub(super) fn add_waiter(&mut self, index: u64, resource: &str, position: usize, waiter: Waiter) {
        debug_assert!(self.resources.get(resource).and_then(|r| r.waiter_position(&waiter.owner)).is_none());
        self.owner_entry(index, &waiter.owner).waits.insert(resource.to_string());
        self.waits.insert(Due::wait(resource, &waiter));
        self.resources.entry(resource.to_string()).or_default().waiters.insert(position, waiter);
    }

    /// Removes `owner`'s pending request for `resource`, if any, and returns it.
    pub(super) fn remove_waiter(&mut self, resource: &str, owner: &str) -> Option<Waiter> {
        let entry = self.resources.get_mut(resource)?;
        let position = entry.waiter_position(owner)?;
        let waiter = entry.waiters.remove(position).expect("position is in the queue");
        self.waits.remove(&Due::wait(resource, &waiter));
        if let Some(record) = self.owners.get_mut(owner) {
            record.waits.remove(resource);
        }
        self.forget_if_idle(resource, owner);
        Some(waiter)
    }

    /// The record of `owner`, created with `first_seen = index` if new.
    fn owner_entry(&mut self, index: u64, owner: &str) -> &mut Owner {
        self.owners.entry(owner.to_string()).or_insert_with(|| Owner {
            first_seen: index,
            holds: BTreeSet::new(),
            waits: BTreeSet::new(),
        })
    }

    /// Forgets `resource` if nobody holds or waits for it, and `owner` if it
    /// neither holds nor waits: its next request makes it new again.
    fn forget_if_idle(&mut self, resource: &str, owner: &str) {
        if self.resources.get(resource).is_some_and(|r| r.holders.is_empty() && r.waiters.is_empty()) {
            self.resources.remove(resource);
        }
        if self.owners.get(owner).is_some_and(|o| o.holds.is_empty() && o.waits.is_empty()) {
            self.owners.remove(owner);
        }
    }
}

/// The indexes of a [`LockTable`], as [`LockTable::derive_indexes`] computes them.
pub(super) struct Indexes {
    /// See `LockTable::leases`.
    pub(super) leases: BTreeSet<Due>,
    /// See `LockTable::waits`.
    pub(super) waits: BTreeSet<Due>,
    /// Each owner's (holds, waits).
    pub(super) owners: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>,
}

impl LockTable {
    /// Computes every index from `resources` alone: how a loaded snapshot
    /// gets its indexes, and how the invariant check tells whether the live
    /// ones drifted.
    pub(super) fn derive_indexes(&self) -> Indexes {
        let mut indexes = Indexes { leases: BTreeSet::new(), waits: BTreeSet::new(), owners: BTreeMap::new() };
        for (name, entry) in &self.resources {
            for grant in &entry.holders {
                indexes.owners.entry(grant.owner.clone()).or_default().0.insert(name.clone());
                indexes.leases.insert(Due::lease(name, grant));
            }
            for waiter in &entry.waiters {
                indexes.owners.entry(waiter.owner.clone()).or_default().1.insert(name.clone());
                indexes.waits.insert(Due::wait(name, waiter));
            }
        }
        indexes
    }

    /// Replaces every index by one derived from `resources`; fails if a
    /// holder or waiter has no owner record (no `first_seen`) or an owner
    /// record has neither holds nor waits.
    pub(super) fn rebuild_indexes(&mut self) -> Result<(), String> {
        let indexes = self.derive_indexes();
        if !indexes.owners.keys().eq(self.owners.keys()) {
            return Err("owner records do not match the holders and waiters".into());
        }
        for ((holds, waits), record) in indexes.owners.into_values().zip(self.owners.values_mut()) {
            record.holds = holds;
            record.waits = waits;
        }
        self.leases = indexes.leases;
        self.waits = indexes.waits;
        Ok(())
    }
}
