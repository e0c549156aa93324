//! The wait-for graph, the cycle search and the victim's abort.
//!
//! The graph is never stored: an owner's out-edges are read off the queues
//! it stands in (its `waits` index names them), which keeps the graph exact
//! by construction. Edges appear only when a request is queued, and every
//! edge a queued request adds starts or ends at its owner, so a cycle that
//! did not exist before goes through the new waiter: searching from it
//! alone is enough, and the graph is acyclic between entries.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::records::Resource;
use super::{Ctx, LockMode, LockTable};
use crate::event::Event;

impl Resource {
    /// The owners the waiter at `position` waits for: incompatible holders
    /// other than itself, then incompatible waiters ahead of it (an owner
    /// may appear twice: an upgrader is both).
    pub(super) fn blockers(&self, position: usize) -> impl Iterator<Item = &str> {
        let waiter = &self.waiters[position];
        let holders = self.holders.iter().filter(move |g| g.owner != waiter.owner && !g.mode.compatible(waiter.mode));
        let ahead = self.waiters.iter().take(position).filter(move |w| !w.mode.compatible(waiter.mode));
        holders.map(|g| g.owner.as_str()).chain(ahead.map(|w| w.owner.as_str()))
    }
}

impl LockTable {
    /// Aborts victims while `owner` is on a cycle; true if `owner` itself
    /// was one (its request then answers `Deadlock`). Each abort removes an
    /// owner from the graph, so this ends.
    pub(super) fn resolve_deadlocks(&mut self, ctx: Ctx, owner: &str, events: &mut Vec<Event>) -> bool {
        while let Some(cycle) = self.shortest_cycle(owner) {
            let victim = self.youngest(&cycle);
            self.abort(ctx, &victim, &cycle, events);
            if victim == owner {
                return true;
            }
        }
        false
    }

    /// The shortest cycle through `start`, from `start` on; see [`CycleSearch`].
    fn shortest_cycle(&self, start: &str) -> Option<Vec<String>> {
        if !self.is_waited_for(start) {
            return None; // the usual case: a client queuing with nothing held
        }
        CycleSearch::new(self, start).run()
    }

    /// True if some owner has an edge to `owner`: a waiter of a resource it
    /// holds, incompatible with its hold, or a waiter queued behind it,
    /// incompatible with its request. Without one, no cycle goes through
    /// `owner`, whatever the rest of the graph. O(its queues' lengths).
    fn is_waited_for(&self, owner: &str) -> bool {
        let Some(record) = self.owners.get(owner) else {
            return false;
        };
        let held = record.holds.iter().any(|name| {
            let entry = &self.resources[name];
            let mode = entry.holder(owner).expect("holds index").mode;
            entry.waiters.iter().any(|waiter| waiter.owner != owner && !waiter.mode.compatible(mode))
        });
        held || record.waits.iter().any(|name| {
            let waiters = &self.resources[name].waiters;
            // From the back: a new waiter is usually last, so this is O(1).
            let position = waiters.iter().rposition(|waiter| waiter.owner == owner).expect("waits index");
            let mode = waiters[position].mode;
            waiters.range(position + 1..).any(|waiter| !waiter.mode.compatible(mode))
        })
    }

    /// The youngest owner of `cycle`: largest `first_seen` (the name breaks
    /// ties, which cannot happen: one entry records at most one new owner).
    fn youngest(&self, cycle: &[String]) -> String {
        let age = |owner: &&String| (self.owners[owner.as_str()].first_seen, (*owner).clone());
        cycle.iter().max_by_key(age).expect("a cycle has owners").clone()
    }

    /// Aborts `victim`: every pending request fails, every hold is released,
    /// then waiters of every resource touched are granted (all by name).
    fn abort(&mut self, ctx: Ctx, victim: &str, cycle: &[String], events: &mut Vec<Event>) {
        let record = self.owners[victim].clone();
        for resource in &record.waits {
            self.remove_waiter(resource, victim);
            events.push(Event::LockDeadlock {
                victim: victim.to_string(),
                resource: resource.clone(),
                cycle: cycle.to_vec(),
            });
        }
        for resource in &record.holds {
            self.remove_hold(resource, victim);
            events.push(Event::LockReleased { resource: resource.clone(), owner: victim.to_string() });
        }
        for resource in record.waits.union(&record.holds) {
            self.grant_waiters(ctx, resource, events);
        }
        self.deadlocks_resolved += 1;
    }
}

/// One breadth-first search for the shortest cycle through `start`; among
/// equally short ones, the smallest sequence of names. Owners are dequeued
/// in order of their smallest shortest path from `start` (out-edges taken
/// by name), so the first one dequeued with an edge back to `start` closes
/// that cycle.
///
/// A long queue makes the graph dense (each exclusive waiter waits for all
/// ahead of it), so out-edges are not listed one by one. Per resource and
/// requested mode the search remembers how much it has read: whether the
/// holders, and which prefix of the queue. Whatever was read once was
/// enqueued then, so a later reader would only find visited owners: it reads
/// just the rest. Whether an owner's edge leads back to `start` is checked
/// directly instead. Cost: O((holders + waiters) × log) per resource
/// reached, not O(waiters²).
struct CycleSearch<'t> {
    table: &'t LockTable,
    start: &'t str,
    /// Each owner found, with the owner it was found from (`start` has none).
    parent: BTreeMap<&'t str, Option<&'t str>>,
    /// Queue position of each waiter, per resource reached.
    positions: BTreeMap<&'t str, BTreeMap<&'t str, usize>>,
    /// Per (resource, requested mode): holders read yet, queue prefix read.
    read: BTreeMap<(&'t str, LockMode), (bool, usize)>,
}

impl<'t> CycleSearch<'t> {
    /// A search of `table` from `start`, which counts as found already.
    fn new(table: &'t LockTable, start: &'t str) -> CycleSearch<'t> {
        let parent = BTreeMap::from([(start, None)]);
        CycleSearch { table, start, parent, positions: BTreeMap::new(), read: BTreeMap::new() }
    }

    /// The cycle, or `None` once every owner reachable from `start` is read.
    fn run(mut self) -> Option<Vec<String>> {
        let mut queue = VecDeque::from([self.start]);
        while let Some(owner) = queue.pop_front() {
            if owner != self.start && self.waits_for_start(owner) {
                return Some(self.path_to(owner));
            }
            for found in self.unread_blockers(owner) {
                if !self.parent.contains_key(found) {
                    self.parent.insert(found, Some(owner));
                    queue.push_back(found);
                }
            }
        }
        None
    }

    /// The pending requests of `owner`: (resource name, resource, position).
    fn requests(&mut self, owner: &str) -> Vec<(&'t str, &'t Resource, usize)> {
        let table = self.table;
        let Some(record) = table.owners.get(owner) else {
            return Vec::new();
        };
        let mut requests = Vec::new();
        for (name, entry) in record.waits.iter().map(|name| table.resources.get_key_value(name).expect("waits index")) {
            let positions = self.positions.entry(name.as_str()).or_insert_with(|| {
                entry.waiters.iter().enumerate().map(|(at, waiter)| (waiter.owner.as_str(), at)).collect()
            });
            requests.push((name.as_str(), entry, positions[owner]));
        }
        requests
    }

    /// True if `owner` has an edge to `start`: `start` holds a resource
    /// `owner` waits for in an incompatible mode, or waits ahead of it with
    /// an incompatible request.
    fn waits_for_start(&mut self, owner: &str) -> bool {
        let start = self.start;
        self.requests(owner).into_iter().any(|(name, entry, position)| {
            let mode = entry.waiters[position].mode;
            let held = entry.holder(start).is_some_and(|grant| !grant.mode.compatible(mode));
            let ahead = self.positions[name]
                .get(start)
                .is_some_and(|&at| at < position && !entry.waiters[at].mode.compatible(mode));
            held || ahead
        })
    }

    /// The blockers of `owner` in the parts of its queues no earlier owner
    /// read for the same mode, by name; marks those parts read.
    fn unread_blockers(&mut self, owner: &str) -> BTreeSet<&'t str> {
        let mut found = BTreeSet::new();
        for (name, entry, position) in self.requests(owner) {
            let mode = entry.waiters[position].mode;
            let (holders_read, prefix_read) = self.read.entry((name, mode)).or_insert((false, 0));
            if !*holders_read {
                let blocking =
                    entry.holders.iter().filter(|grant| grant.owner != owner && !grant.mode.compatible(mode));
                found.extend(blocking.map(|grant| grant.owner.as_str()));
                *holders_read = true;
            }
            if *prefix_read < position {
                let ahead = entry.waiters.range(*prefix_read..position).filter(|waiter| !waiter.mode.compatible(mode));
                found.extend(ahead.map(|waiter| waiter.owner.as_str()));
                *prefix_read = position;
            }
        }
        found
    }

    /// The cycle `start`, ..., `last` (whose edge back to `start` closes it).
    fn path_to(&self, last: &'t str) -> Vec<String> {
        let mut cycle = vec![last.to_string()];
        let mut at = last;
        while let Some(Some(previous)) = self.parent.get(at) {
            cycle.push(previous.to_string());
            at = previous;
        }
        cycle.reverse();
        cycle
    }
}
