//! Loading a lock table from a snapshot. Only the state is stored (the
//! indexes are `#[serde(skip)]`); loading rebuilds them and checks the
//! invariants, so a damaged snapshot is refused instead of applied.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::records::{Owner, Resource};
use super::LockTable;

/// The stored form of a [`LockTable`]: the fields it serialises.
#[derive(Deserialize)]
pub(super) struct Snapshot {
    /// See [`LockTable`].
    resources: BTreeMap<String, Resource>,
    /// Owners with only `first_seen` (the rest is index).
    owners: BTreeMap<String, Owner>,
    /// See [`LockTable::deadlocks_resolved`].
    deadlocks_resolved: u64,
    /// See [`LockTable`].
    fencing_tokens_issued: u64,
}

impl TryFrom<Snapshot> for LockTable {
    type Error = String;

    fn try_from(snapshot: Snapshot) -> Result<LockTable, String> {
        let mut table = LockTable {
            resources: snapshot.resources,
            owners: snapshot.owners,
            deadlocks_resolved: snapshot.deadlocks_resolved,
            fencing_tokens_issued: snapshot.fencing_tokens_issued,
            ..LockTable::default()
        };
        table.rebuild_indexes()?;
        table.check_invariants()?;
        Ok(table)
    }
}
