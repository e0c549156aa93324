//! The directory's invariants: the full consistency check, for tests. It
//! reads the whole cache keyspace, so nothing calls it while applying.

use std::collections::{BTreeMap, BTreeSet};

use super::keys;
use super::records::{Memory, Record};
use super::{Mesi, NodeId};
use crate::store::Store;

/// What the store holds, decoded.
#[derive(Default)]
struct Tables {
    records: BTreeMap<String, Record>,
    holders: BTreeSet<(NodeId, String)>,
    dirty: BTreeSet<String>,
    memory: BTreeMap<String, Memory>,
}

/// `Ok` if the cache records in `store` are consistent, else what is broken:
/// - every key of the cache keyspace and every record decodes;
/// - MESI: at most one holder is M or E, and if one is, it is the only
///   holder; a holder in M implies the record is dirty;
/// - versions start at 1 (0 is never issued);
/// - the holder index holds exactly the (node, key) pairs of the records'
///   holders, and the dirty index exactly the dirty keys;
/// - every embedded memory value belongs to a record and is of a version
///   not newer than the record's.
///
/// O(store size).
pub fn check_invariants(store: &dyn Store) -> Result<(), String> {
    let tables = read(store)?;
    for (key, record) in &tables.records {
        check_record(key, record)?;
    }
    let holders: BTreeSet<(NodeId, String)> = tables
        .records
        .iter()
        .flat_map(|(key, record)| record.holders.keys().map(move |node| (*node, key.clone())))
        .collect();
    if holders != tables.holders {
        return Err(format!("holder index {:?} but records hold {holders:?}", tables.holders));
    }
    let dirty: BTreeSet<String> =
        tables.records.iter().filter(|(_, record)| record.dirty.is_some()).map(|(key, _)| key.clone()).collect();
    if dirty != tables.dirty {
        return Err(format!("dirty index {:?} but dirty records {dirty:?}", tables.dirty));
    }
    for (key, memory) in &tables.memory {
        match tables.records.get(key) {
            None => return Err(format!("{key:?}: memory value without a record")),
            Some(record) if memory.version > record.version => {
                return Err(format!("{key:?}: memory has version {} of {}", memory.version, record.version))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Decodes every key and record of the cache keyspace.
fn read(store: &dyn Store) -> Result<Tables, String> {
    let (start, end) = keys::space_range();
    let mut tables = Tables::default();
    for (key, value) in store.scan(&start, &end, usize::MAX) {
        let bad = || format!("undecodable entry {key:?}");
        if let Some(name) = keys::decode_record(&key) {
            tables.records.insert(name, Record::decode(&value).ok_or_else(bad)?);
        } else if let Some(name) = keys::decode_memory(&key) {
            tables.memory.insert(name, Memory::decode(&value).ok_or_else(bad)?);
        } else if let Some(name) = keys::decode_dirty(&key).filter(|_| value.is_empty()) {
            tables.dirty.insert(name);
        } else if let Some(held) = keys::decode_holder(&key).filter(|_| value.is_empty()) {
            tables.holders.insert(held);
        } else {
            return Err(bad());
        }
    }
    Ok(tables)
}

/// The MESI rules for one record.
fn check_record(key: &str, record: &Record) -> Result<(), String> {
    let exclusive = record.holders.values().filter(|state| matches!(state, Mesi::M | Mesi::E)).count();
    if exclusive > 1 || (exclusive == 1 && record.holders.len() > 1) {
        return Err(format!("{key:?}: holders {:?} share an exclusive line", record.holders));
    }
    if record.dirty.is_none() && record.holders.values().any(|state| *state == Mesi::M) {
        return Err(format!("{key:?}: held in M but clean"));
    }
    if record.version == 0 {
        return Err(format!("{key:?}: version 0"));
    }
    Ok(())
}
