//! `RaftStateMachine`: applies committed entries to the pure
//! [`dsync_statemachine::State`] and keeps its snapshots in sled.
//!
//! The live state is in memory behind a lock shared with the server (local
//! reads). Durability comes from the WAL plus the latest snapshot: on start
//! the snapshot is loaded from sled and openraft re-applies the committed log
//! tail. A snapshot is made durable (sled flush, then an fsync of sled's
//! files, because sled's own flush uses `sync_file_range`, which neither
//! flushes the disk cache nor file metadata) before openraft may purge the
//! log it covers.
//!
//! Snapshots are point-in-time: the image is encoded while openraft's state
//! machine worker holds `&mut self`, so no entry applied later can leak into
//! it (a leak would apply lock and queue commands twice on a follower).

use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use dsync_statemachine::{Event, Response, State};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, EntryPayload, MessageSummary, RaftSnapshotBuilder, SnapshotMeta, StorageIOError, StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::codec;
use crate::meta::sync_dir;
use crate::types::{Entry, LogId, NodeId, StorageError, TypeConfig};

/// The membership as the state machine last applied it.
pub type Membership = StoredMembership<NodeId, BasicNode>;

/// The applied state: what a local read sees.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    /// The replicated application state.
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

/// Entries' event batches buffered per subscriber before it counts as
/// lagging. A lagging subscriber loses events and must fall back to reading
/// the state.
pub const EVENT_BUFFER: usize = 16 * 1024;

/// A snapshot as stored in sled: its metadata and the encoded state.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

/// The sled database holding the current snapshot.
#[derive(Clone)]
struct SnapshotStore {
    db: sled::Db,
    dir: PathBuf,
}

/// sled key of the current snapshot.
const CURRENT_SNAPSHOT_KEY: &[u8] = b"snapshot/current";

impl SnapshotStore {
    fn open(dir: &Path) -> io::Result<SnapshotStore> {
        let db = sled::Config::new().path(dir).open().map_err(io::Error::other)?;
        Ok(SnapshotStore { db, dir: dir.to_path_buf() })
    }

    fn load(&self) -> io::Result<Option<StoredSnapshot>> {
        match self.db.get(CURRENT_SNAPSHOT_KEY).map_err(io::Error::other)? {
            None => Ok(None),
            Some(bytes) => codec::decode(&bytes).map(Some).map_err(io::Error::other),
        }
    }

    /// Stores `snapshot` as the current one and makes it durable.
    fn save(&self, snapshot: &StoredSnapshot) -> io::Result<()> {
        let bytes = codec::encode(snapshot).map_err(io::Error::other)?;
        self.db.insert(CURRENT_SNAPSHOT_KEY, bytes).map_err(io::Error::other)?;
        self.db.flush().map_err(io::Error::other)?;
        sync_tree(&self.dir)
    }
}

/// fsyncs every file and directory below `dir` (see the module docs for why).
fn sync_tree(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            sync_tree(&entry.path())?;
        } else if kind.is_file() {
            std::fs::File::open(entry.path())?.sync_all()?;
        }
    }
    sync_dir(dir)
}

/// The state machine storage of one Raft group.
pub struct StateMachineStore {
    applied: SharedApplied,
    snapshots: SnapshotStore,
    /// Every event of every applied entry, in log order, for subscribers.
    events: broadcast::Sender<EventRecord>,
}

impl StateMachineStore {
    /// Opens the sled store under `dir` and restores the latest snapshot.
    /// Events of applied entries are sent on `events`.
    pub fn open(dir: &Path, events: broadcast::Sender<EventRecord>) -> io::Result<StateMachineStore> {
        let snapshots = SnapshotStore::open(dir)?;
        let applied = match snapshots.load()? {
            None => Applied::default(),
            Some(snapshot) => Applied {
                state: State::from_snapshot(&snapshot.data).map_err(io::Error::other)?,
                last_applied: snapshot.meta.last_log_id,
                membership: snapshot.meta.last_membership,
            },
        };
        Ok(StateMachineStore { applied: Arc::new(RwLock::new(applied)), snapshots, events })
    }

    /// The applied state, shared with readers.
    pub fn applied(&self) -> SharedApplied {
        self.applied.clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Applied> {
        self.applied.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Applied> {
        self.applied.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Builds a snapshot from an image taken at a single point in time.
pub struct SnapshotBuilder {
    image: StoredSnapshot,
    snapshots: SnapshotStore,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (store, image) = (self.snapshots.clone(), self.image.clone());
        let signature = Some(image.meta.signature());
        tokio::task::spawn_blocking(move || store.save(&image))
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)))
            .map_err(|e| StorageIOError::write_snapshot(signature, &e))?;
        tracing::info!(snapshot = %self.image.meta.summary(), bytes = self.image.data.len(), "snapshot built");
        Ok(Snapshot { meta: self.image.meta.clone(), snapshot: Box::new(Cursor::new(self.image.data.clone())) })
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
        let responses = {
            let mut applied = self.write();
            entries
                .into_iter()
                .map(|entry| {
                    applied.last_applied = Some(entry.log_id);
                    match entry.payload {
                        EntryPayload::Blank => Response::Empty,
                        EntryPayload::Normal(request) => {
                            let output = applied.state.apply(entry.log_id.index, &request);
                            let index = entry.log_id.index;
                            if !output.events.is_empty() {
                                emitted.push(EventRecord { index, events: output.events });
                            }
                            output.response
                        }
                        EntryPayload::Membership(membership) => {
                            applied.membership = StoredMembership::new(Some(entry.log_id), membership);
                            Response::Empty
                        }
                    }
                })
                .collect()
        };
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
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: applied.membership.clone(),
            snapshot_id: format!("{}-{}", last.map_or(0, |l| l.leader_id.term), last.map_or(0, |l| l.index)),
        };
        SnapshotBuilder {
            image: StoredSnapshot { meta, data: applied.state.to_snapshot() },
            snapshots: self.snapshots.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let signature = Some(meta.signature());
        let state = State::from_snapshot(&data).map_err(|e| StorageIOError::read_snapshot(signature.clone(), &e))?;
        let stored = StoredSnapshot { meta: meta.clone(), data };
        let store = self.snapshots.clone();
        tokio::task::spawn_blocking(move || store.save(&stored))
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)))
            .map_err(|e| StorageIOError::write_snapshot(signature, &e))?;
        *self.write() = Applied { state, last_applied: meta.last_log_id, membership: meta.last_membership.clone() };
        tracing::info!(snapshot = %meta.summary(), "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let store = self.snapshots.clone();
        let stored = tokio::task::spawn_blocking(move || store.load())
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)))
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(stored.map(|s| Snapshot { meta: s.meta, snapshot: Box::new(Cursor::new(s.data)) }))
    }
}
