//! `RaftLogStorage` on the dsync WAL.
//!
//! The WAL is the source of truth for everything Raft must not lose: each log
//! entry is one WAL record at the WAL index equal to its Raft index, appended
//! with group commit and acknowledged to openraft (`LogFlushed`) only after
//! fdatasync. The vote and the purge point live in a small fsynced
//! [`MetaFile`]; the commit index is a lazily written hint.
//!
//! Write order on purge: first the purge point is made durable, then the WAL
//! drops the records. A crash in between leaves extra records below the purge
//! point, which [`LogStore::open`] drops again, so the two always agree.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dsync_wal::{Wal, WalError, WalOptions};
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, RaftLogReader, StorageIOError};
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::meta::{Durability, MetaFile};
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

/// What Raft keeps beside the log and must never lose.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct RaftMeta {
    /// The latest vote cast or granted (term, candidate, committed flag).
    vote: Option<Vote>,
    /// The last log id removed from the WAL after a snapshot covered it.
    last_purged: Option<LogId>,
}

/// The Raft log of one group: WAL entries plus the vote file.
pub struct LogStore {
    wal: Wal,
    meta_file: MetaFile,
    meta: RaftMeta,
    committed_file: MetaFile,
    /// Id of the newest entry in the log (or the purge point if empty).
    last_log_id: Option<LogId>,
    /// The commit index, shared with the node for `/health`.
    commit_index: Arc<AtomicU64>,
}

/// A cheap, clonable reader of the log for replication tasks and `/raft/log`.
#[derive(Clone)]
pub struct LogReader {
    wal: Wal,
}

impl LogStore {
    /// Opens (or creates) the log under `dir`, repairing a purge that a crash
    /// interrupted.
    pub fn open(dir: &Path) -> io::Result<LogStore> {
        std::fs::create_dir_all(dir)?;
        let wal = Wal::open(dir.join("wal"), WalOptions::default()).map_err(io::Error::other)?;
        let meta_file = MetaFile::new(dir.join("raft_meta"), Durability::Synced);
        let meta: RaftMeta = meta_file.load()?.unwrap_or_default();
        if let Some(purged) = meta.last_purged {
            if wal.first_index() <= purged.index {
                tracing::info!(upto = purged.index, "finishing a purge interrupted by a crash");
                wal.purge(purged.index).map_err(io::Error::other)?;
            }
        }
        let committed_file = MetaFile::new(dir.join("committed"), Durability::Lazy);
        let committed = committed_file.load::<Option<LogId>>()?.flatten();
        let mut store = LogStore {
            wal,
            meta_file,
            meta,
            committed_file,
            last_log_id: None,
            commit_index: Arc::new(AtomicU64::new(committed.map_or(0, |c| c.index))),
        };
        store.last_log_id = store.newest_log_id().map_err(io::Error::other)?;
        Ok(store)
    }

    /// A reader sharing this log's WAL.
    pub fn reader(&self) -> LogReader {
        LogReader { wal: self.wal.clone() }
    }

    /// The commit index as last reported by Raft (shared counter).
    pub fn commit_index(&self) -> Arc<AtomicU64> {
        self.commit_index.clone()
    }

    /// The newest entry's id, or the purge point when the WAL is empty.
    fn newest_log_id(&self) -> Result<Option<LogId>, StorageError> {
        let next = self.wal.next_index();
        if next == self.wal.first_index() {
            return Ok(self.meta.last_purged);
        }
        let entry = self.reader().entry(next - 1)?;
        Ok(entry.map(|e| e.log_id).or(self.meta.last_purged))
    }

    /// Persists the vote/purge metadata durably on a blocking thread.
    async fn store_meta(&self) -> Result<(), io::Error> {
        let (file, meta) = (self.meta_file.clone(), self.meta.clone());
        run_blocking(move || file.store(&meta)).await
    }
}

impl LogReader {
    /// Entries with index in `[from, until)` that are still in the log.
    pub fn entries(&self, from: u64, until: u64) -> Result<Vec<Entry>, StorageError> {
        let records = self.wal.read_range(from..until).map_err(read_error)?;
        records.iter().map(|r| codec::decode(r).map_err(read_error)).collect()
    }

    /// One entry, if it is still in the log.
    pub fn entry(&self, index: u64) -> Result<Option<Entry>, StorageError> {
        Ok(self.entries(index, index.saturating_add(1))?.pop())
    }

    /// The first index still in the log (earlier ones are in a snapshot).
    pub fn first_index(&self) -> u64 {
        self.wal.first_index()
    }

    /// One past the last index in the log.
    pub fn next_index(&self) -> u64 {
        self.wal.next_index()
    }
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let from = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i + 1,
            Bound::Unbounded => 0,
        };
        let until = match range.end_bound() {
            Bound::Included(&i) => i + 1,
            Bound::Excluded(&i) => i,
            Bound::Unbounded => u64::MAX,
        };
        self.entries(from, until)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.reader().try_get_log_entries(range).await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        Ok(LogState { last_purged_log_id: self.meta.last_purged, last_log_id: self.last_log_id })
    }

    async fn get_log_reader(&mut self) -> LogReader {
        self.reader()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.meta.vote = Some(*vote);
        self.store_meta().await.map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.meta.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        if let Some(c) = committed {
            self.commit_index.store(c.index, Ordering::Relaxed);
        }
        // A hint only (see module docs): a lost write delays re-applying
        // after a restart until the leader repeats the commit index.
        let file = self.committed_file.clone();
        run_blocking(move || file.store(&committed)).await.map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let committed: Option<LogId> = self.committed_file.load().map_err(|e| StorageIOError::read(&e))?.flatten();
        // The hint is written after the entries it names were fsynced, so it
        // never exceeds the log; the filter keeps a damaged hint from doing so.
        Ok(committed.filter(|c| Some(c.index) <= self.last_log_id.map(|l| l.index)))
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            callback.log_io_completed(Ok(()));
            return Ok(());
        };
        let (first_id, last_id) = (first.log_id, last.log_id);
        let expected = self.wal.next_index();
        // The log must stay free of holes.
        if first_id.index > expected && self.wal.first_index() == expected {
            // An empty log may start anywhere: move its start to this entry.
            let (wal, start) = (self.wal.clone(), first_id.index);
            run_blocking(move || wal.purge(start - 1).map_err(io::Error::other))
                .await
                .map_err(|e| StorageIOError::write_log_entry(first_id, &e))?;
        } else if first_id.index != expected {
            let e = io::Error::other(format!(
                "log hole: append at {} but the log holds [{}, {expected})",
                first_id.index,
                self.wal.first_index()
            ));
            return Err(StorageIOError::write_log_entry(first_id, &e).into());
        }
        let records = entries
            .iter()
            .map(codec::encode)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StorageIOError::write_log_entry(first_id, &e))?;

        let (tx, rx) = tokio::sync::oneshot::channel();
        self.wal.append_with(records, Box::new(move |result| drop(tx.send(result))));
        let result = rx.await.unwrap_or(Err(WalError::Closed));
        match result {
            Ok(_) => {
                self.last_log_id = Some(last_id);
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let err = StorageIOError::write_log_entry(first_id, &e).into();
                callback.log_io_completed(Err(io::Error::other(e)));
                Err(err)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let wal = self.wal.clone();
        run_blocking(move || wal.truncate(log_id.index).map_err(io::Error::other))
            .await
            .map_err(|e| StorageIOError::write_log_entry(log_id, &e))?;
        self.last_log_id = self.newest_log_id()?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.meta.last_purged = Some(log_id);
        self.store_meta().await.map_err(|e| StorageIOError::write_logs(&e))?;
        let wal = self.wal.clone();
        run_blocking(move || wal.purge(log_id.index).map_err(io::Error::other))
            .await
            .map_err(|e| StorageIOError::write_logs(&e))?;
        if self.last_log_id < Some(log_id) {
            self.last_log_id = Some(log_id);
        }
        Ok(())
    }
}

/// Runs blocking file I/O off the async worker threads.
async fn run_blocking<F: FnOnce() -> io::Result<()> + Send + 'static>(f: F) -> io::Result<()> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| Err(io::Error::other(e)))
}

fn read_error(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_logs(&e).into()
}
