//! Read-only answers for `GET /locks` and `GET /locks/wait_for`.

use std::collections::BTreeSet;

use super::records::Resource;
use super::{LockTable, LockView, WaitEdge};

impl Resource {
    /// This resource, named `name`, as `GET /locks` shows it.
    pub(super) fn view(&self, name: &str) -> LockView {
        LockView {
            resource: name.to_string(),
            mode: self.mode(),
            holders: self.holders.clone(),
            waiters: self.waiters.iter().cloned().collect(),
        }
    }
}

impl LockTable {
    /// Every edge of the wait-for graph, sorted and without duplicates (an
    /// upgrader is both a holder and a waiter ahead, but one edge).
    /// O(sum over resources of waiters × (holders + waiters)).
    pub(super) fn edges(&self) -> Vec<WaitEdge> {
        let mut edges = BTreeSet::new();
        for (name, entry) in &self.resources {
            for (position, waiter) in entry.waiters.iter().enumerate() {
                edges.extend(entry.blockers(position).map(|holder| WaitEdge {
                    waiter: waiter.owner.clone(),
                    holder: holder.to_string(),
                    resource: name.clone(),
                }));
            }
        }
        edges.into_iter().collect()
    }
}
