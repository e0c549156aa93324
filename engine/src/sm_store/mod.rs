//! `RaftStateMachine`: applies committed entries to the pure
//! [`dsync_statemachine::State`], whose small part (locks, counters) lives
//! in memory and whose large part (queue backlogs) lives in sled through
//! the [`Store`](dsync_statemachine::store::Store) trait.
//!
//! Durability, on restart:
//! - sled holds the store part at some applied index `A`: each apply batch
//!   commits its writes together with `A` atomically ([`kv::BatchStore`]).
//!   sled does not fsync every batch; whatever it lost is older than `A`'s
//!   batch, and openraft re-applies the log after `A`.
//! - The latest snapshot file (index `S`) holds both parts. If sled is
//!   behind it (`A < S`: lost writes, or an install interrupted by a crash),
//!   sled is reloaded from the file.
//! - The memory part is rebuilt from the snapshot and the log entries
//!   `(S, A]`, replayed against a `DiscardStore` because sled already
//!   has their store writes. Raft purges the log only up to `S`, so those
//!   entries are always in the WAL.
//!
//! Snapshots are point-in-time without stopping applies: the memory part is
//! encoded while openraft's state machine worker holds `&mut self`, and the
//! store part is streamed from sled through a [`kv::SnapshotOverlay`] that
//! keeps the pre-images of keys written since (a snapshot that leaked later
//! entries would apply lock and queue commands twice on a follower).
//! Snapshot data travels as files, so a large backlog never has to fit in
//! memory.

mod kv;
mod snapshot_dir;
mod snapshot_file;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use dsync_statemachine::store::DiscardStore;
use dsync_statemachine::{Event, Request, Response, State};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{BasicNode, EntryPayload, MessageSummary, RaftSnapshotBuilder, StorageIOError, StoredMembership};
use tokio::sync::broadcast;

pub use kv::SledView;
use kv::{BatchStore, SharedOverlay, APPLIED_KEY, MEMBERSHIP_KEY, STATE_PREFIX};
use snapshot_dir::SnapshotDir;
use snapshot_file::{Meta, SnapshotReader, SnapshotWriter};

use crate::codec;
use crate::log_store::LogReader;
use crate::types::{Entry, LogId, NodeId, StorageError, TypeConfig};

/// The membership as the state machine last applied it.
pub type Membership = StoredMembership<NodeId, BasicNode>;

/// The in-memory side of the applied state.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// The replicated state's in-memory part.
    pub state: State,
    /// Id of the last entry applied.
    pub last_applied: Option<LogId>,
    /// The last membership entry applied.
    pub membership: Membership,
}

/// Shared, read-mostly handle to the applied state.
pub type SharedApplied = Arc<RwLock<Applied>>;

/// The events of one applied entry, in order, with the entry's log index.
/// They travel together so a subscriber judges an entry by all it did (a
/// lock granted and taken back within one entry was never really held).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// Index of the entry whose application emitted the events.
    pub index: u64,
    /// What happened, in order.
    pub events: Vec<Event>,
}

/// Told of every entry as it is applied, synchronously, before openraft
/// learns the entry is applied.
///
/// This is for node-local state that must move in lockstep with the applied
/// index: once a node reports index `i` applied, what `i` did to it is
/// already done (the cache drops a line invalidated at `i` before anyone
/// can observe `applied >= i`). The event bus cannot promise that: its
/// subscribers run later. Implementations must be quick and must not call
/// back into the node (the applied state is locked while they run).
pub trait ApplyObserver: Send + Sync {
    /// The entry at `index` carrying `request` was applied and answered `response`.
    fn applied(&self, index: u64, request: &Request, response: &Response);
    /// The applied state was replaced wholesale (a snapshot was installed):
    /// anything derived from earlier entries may be stale.
    fn state_replaced(&self);
}

/// Entries' event batches buffered per subscriber before it counts as
/// lagging. A lagging subscriber loses events and must fall back to reading
/// the state. The channel keeps this many batches alive even when every
/// subscriber has read them, so it is also a memory bound: a batch of a
/// 1000-message produce carries 1000 ids.
pub const EVENT_BUFFER: usize = 512;

/// sled keys loaded per batch when a snapshot is installed.
const LOAD_BATCH_ENTRIES: usize = 4096;

/// The state machine storage of one Raft group.
pub struct StateMachineStore {
    applied: SharedApplied,
    tree: sled::Tree,
    snapshots: Arc<SnapshotDir>,
    overlay: SharedOverlay,
    /// The file of the snapshot being received, between
    /// `begin_receiving_snapshot` and `install_snapshot`.
    receiving: Option<PathBuf>,
    /// Every event of every applied entry, in log order, for subscribers.
    events: broadcast::Sender<EventRecord>,
    /// Told of each applied entry (not of entries replayed on startup: what
    /// they did to node-local state was lost with the process).
    observer: Option<Arc<dyn ApplyObserver>>,
}

/// Handles to the state that readers outside Raft use.
#[derive(Clone)]
pub struct StateReaders {
    /// The in-memory part.
    pub applied: SharedApplied,
    /// The store part.
    pub store: SledView,
}

impl StateMachineStore {
    /// Opens the state under `dir` (sled in `dir/sm`, snapshots in
    /// `dir/snapshots`), rebuilding it as the module docs describe. `log`
    /// supplies the entries to replay; sled keeps at most `cache_bytes` of
    /// the store in memory; `observer` hears of every entry applied from now on.
    pub fn open(
        dir: &Path,
        log: &LogReader,
        cache_bytes: u64,
        events: broadcast::Sender<EventRecord>,
        observer: Option<Arc<dyn ApplyObserver>>,
    ) -> io::Result<StateMachineStore> {
        let db =
            sled::Config::new().path(dir.join("sm")).cache_capacity(cache_bytes).open().map_err(io::Error::other)?;
        let tree = db.open_tree("state").map_err(io::Error::other)?;
        let snapshots = Arc::new(SnapshotDir::open(&dir.join("snapshots"))?);

        let mut state = State::default();
        let mut from_index = 0;
        if let Some((meta, path)) = snapshots.current()? {
            let sled_applied = read_applied(&tree)?;
            if sled_applied < meta.last_log_id {
                tracing::info!(snapshot = %meta.summary(), sled = ?sled_applied, "sled is behind the snapshot; reloading it");
                load_into_sled(&tree, &path)?;
            }
            let reader = SnapshotReader::open(&path)?;
            state = State::from_snapshot(&reader.memory).map_err(io::Error::other)?;
            from_index = meta.last_log_id.map_or(0, |l| l.index + 1);
        }
        let last_applied = read_applied(&tree)?;
        if let Some(applied) = last_applied {
            replay_memory(&mut state, log, from_index, applied.index)?;
        }
        let membership = match tree.get(MEMBERSHIP_KEY).map_err(io::Error::other)? {
            Some(bytes) => codec::decode(&bytes).map_err(io::Error::other)?,
            None => Membership::default(),
        };
        let applied = Arc::new(RwLock::new(Applied { state, last_applied, membership }));
        Ok(StateMachineStore {
            applied,
            tree,
            snapshots,
            overlay: SharedOverlay::default(),
            receiving: None,
            events,
            observer,
        })
    }

    /// Handles for readers outside Raft.
    pub fn readers(&self) -> StateReaders {
        StateReaders { applied: self.applied.clone(), store: SledView::new(self.tree.clone()) }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Applied> {
        self.applied.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Applied> {
        self.applied.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn read_applied(tree: &sled::Tree) -> io::Result<Option<LogId>> {
    match tree.get(APPLIED_KEY).map_err(io::Error::other)? {
        Some(bytes) => codec::decode(&bytes).map_err(io::Error::other),
        None => Ok(None),
    }
}

/// Replays entries `from..=until` into the memory part only.
fn replay_memory(state: &mut State, log: &LogReader, from: u64, until: u64) -> io::Result<()> {
    if from > until {
        return Ok(());
    }
    let entries = log.entries(from, until + 1).map_err(io::Error::other)?;
    if entries.len() as u64 != until + 1 - from {
        return Err(io::Error::other(format!(
            "cannot rebuild the state: the log lacks entries between {from} and {until}"
        )));
    }
    for entry in &entries {
        if let EntryPayload::Normal(request) = &entry.payload {
            state.apply(&mut DiscardStore, entry.log_id.index, request);
        }
    }
    tracing::info!(from, until, "rebuilt the in-memory state from the log");
    Ok(())
}

/// Replaces sled's state with the snapshot at `path`. The applied id is
/// removed first and written last, so a crash in between leaves sled
/// behind the snapshot and the next start reloads it.
fn load_into_sled(tree: &sled::Tree, path: &Path) -> io::Result<()> {
    let mut reader = SnapshotReader::open(path)?;
    tree.remove(APPLIED_KEY).map_err(io::Error::other)?;
    tree.clear().map_err(io::Error::other)?;
    let mut batch = sled::Batch::default();
    let mut pending = 0;
    while let Some((key, value)) = reader.next_entry()? {
        let mut full = STATE_PREFIX.to_vec();
        full.extend_from_slice(&key);
        batch.insert(full, value);
        pending += 1;
        if pending == LOAD_BATCH_ENTRIES {
            tree.apply_batch(std::mem::take(&mut batch)).map_err(io::Error::other)?;
            pending = 0;
        }
    }
    tree.apply_batch(batch).map_err(io::Error::other)?;
    tree.insert(MEMBERSHIP_KEY, codec::encode(&reader.meta.last_membership).map_err(io::Error::other)?)
        .map_err(io::Error::other)?;
    tree.insert(APPLIED_KEY, codec::encode(&reader.meta.last_log_id).map_err(io::Error::other)?)
        .map_err(io::Error::other)?;
    tree.flush().map_err(io::Error::other)?;
    Ok(())
}

/// Copies a whole received snapshot into a new fsynced file at `path`.
fn copy_to(mut received: std::fs::File, path: &Path) -> io::Result<()> {
    use std::io::Seek;
    received.seek(io::SeekFrom::Start(0))?;
    let mut copy = std::fs::File::create(path)?;
    io::copy(&mut received, &mut copy)?;
    copy.sync_all()
}

/// Builds a snapshot from the point in time `get_snapshot_builder` ran.
pub struct SnapshotBuilder {
    meta: Meta,
    memory: Vec<u8>,
    tree: sled::Tree,
    overlay: SharedOverlay,
    snapshots: Arc<SnapshotDir>,
}

impl SnapshotBuilder {
    fn write(&self) -> io::Result<PathBuf> {
        let partial = self.snapshots.partial_path();
        let mut writer = SnapshotWriter::create(&partial, &self.meta, &self.memory)?;
        self.overlay.read_point_in_time(&self.tree, |key, value| writer.entry(key, value))?;
        writer.finish()?;
        // A newer snapshot (installed meanwhile) wins: keep serving it.
        match self.snapshots.publish(&self.meta, &partial)? {
            Some(path) => Ok(path),
            None => self.snapshots.current()?.map(|(_, path)| path).ok_or_else(|| io::Error::other("no snapshot")),
        }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let signature = Some(self.meta.signature());
        let builder = SnapshotBuilder {
            meta: self.meta.clone(),
            memory: std::mem::take(&mut self.memory),
            tree: self.tree.clone(),
            overlay: self.overlay.clone(),
            snapshots: self.snapshots.clone(),
        };
        let written = tokio::task::spawn_blocking(move || {
            let result = builder.write();
            builder.overlay.stop();
            result
        })
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)));
        let path = written.map_err(|e| StorageIOError::write_snapshot(signature.clone(), &e))?;
        let file = tokio::fs::File::open(&path).await.map_err(|e| StorageIOError::read_snapshot(signature, &e))?;
        tracing::info!(snapshot = %self.meta.summary(), "snapshot built");
        Ok(Snapshot { meta: self.meta.clone(), snapshot: Box::new(file) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, Membership), StorageError> {
        let applied = self.read();
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut emitted = Vec::new();
        let mut responses = Vec::new();
        {
            let mut applied = self.write();
            let mut store = BatchStore::new(&self.tree);
            let mut membership_changed = false;
            for entry in entries {
                applied.last_applied = Some(entry.log_id);
                let response = match entry.payload {
                    EntryPayload::Blank => Response::Empty,
                    EntryPayload::Normal(request) => {
                        let output = applied.state.apply(&mut store, entry.log_id.index, &request);
                        if let Some(observer) = &self.observer {
                            observer.applied(entry.log_id.index, &request, &output.response);
                        }
                        if !output.events.is_empty() {
                            emitted.push(EventRecord { index: entry.log_id.index, events: output.events });
                        }
                        output.response
                    }
                    EntryPayload::Membership(membership) => {
                        applied.membership = StoredMembership::new(Some(entry.log_id), membership);
                        membership_changed = true;
                        Response::Empty
                    }
                };
                responses.push(response);
            }
            let membership = membership_changed.then_some(&applied.membership);
            store
                .commit(applied.last_applied, membership, &self.overlay)
                .map_err(|e| StorageIOError::write_state_machine(&e))?;
        }
        // Published after the state is updated, so a subscriber that reads
        // the state on an event sees the change. No subscribers is fine.
        for record in emitted {
            let _ = self.events.send(record);
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        let applied = self.read();
        let last = applied.last_applied;
        let meta = Meta {
            last_log_id: last,
            last_membership: applied.membership.clone(),
            snapshot_id: format!("{}-{}", last.map_or(0, |l| l.leader_id.term), last.map_or(0, |l| l.index)),
        };
        // The point in time: no apply runs while openraft holds `&mut self`.
        self.overlay.start();
        SnapshotBuilder {
            meta,
            memory: applied.state.to_snapshot(),
            tree: self.tree.clone(),
            overlay: self.overlay.clone(),
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        let path = self.snapshots.partial_path();
        // Read and write: openraft writes the chunks, install reads them back.
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        self.receiving = Some(path);
        Ok(Box::new(file))
    }

    async fn install_snapshot(&mut self, meta: &Meta, snapshot: Box<tokio::fs::File>) -> Result<(), StorageError> {
        let signature = Some(meta.signature());
        let error = |e: io::Error| StorageError::from(StorageIOError::write_snapshot(signature.clone(), &e));
        let received = snapshot.into_std().await;
        let leftover = self.receiving.take();
        let (snapshots, tree, meta_owned) = (self.snapshots.clone(), self.tree.clone(), meta.clone());
        let state = tokio::task::spawn_blocking(move || -> io::Result<State> {
            // Copy from the handle openraft gives back (not from the path we
            // handed out: the handle is the contract), then check the copy.
            let partial = snapshots.partial_path();
            copy_to(received, &partial)?;
            if let Some(leftover) = leftover {
                std::fs::remove_file(leftover)?;
            }
            let reader = SnapshotReader::open(&partial)?;
            if reader.meta != meta_owned {
                return Err(io::Error::other("received snapshot's metadata differs from the leader's"));
            }
            let state = State::from_snapshot(&reader.memory).map_err(io::Error::other)?;
            drop(reader);
            // The file is made current before sled is touched: a crash while
            // loading leaves sled behind it, and the next start reloads.
            let Some(path) = snapshots.publish(&meta_owned, &partial)? else {
                return Err(io::Error::other("a newer snapshot is already installed"));
            };
            load_into_sled(&tree, &path)?;
            Ok(state)
        })
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
        .map_err(error)?;
        *self.write() = Applied { state, last_applied: meta.last_log_id, membership: meta.last_membership.clone() };
        if let Some(observer) = &self.observer {
            observer.state_replaced();
        }
        tracing::info!(snapshot = %meta.summary(), "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let current = self.snapshots.current().map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        let Some((meta, path)) = current else { return Ok(None) };
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        Ok(Some(Snapshot { meta, snapshot: Box::new(file) }))
    }
}
