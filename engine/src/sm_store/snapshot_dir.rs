//! The directory of snapshot files and the durable pointer to the current
//! one. A snapshot becomes current only after its file is complete and
//! fsynced; older files are deleted after the pointer moved.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::snapshot_file::Meta;
use crate::meta::{sync_dir, Durability, MetaFile};

/// What the pointer file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Current {
    file_name: String,
    meta: Meta,
}

/// Snapshot files of one group.
pub struct SnapshotDir {
    dir: PathBuf,
    pointer: MetaFile,
    /// Serialises pointer updates (a build and an install may race).
    publishing: Mutex<()>,
    incoming: AtomicU64,
}

impl SnapshotDir {
    /// Opens (or creates) `dir`, deleting leftovers of interrupted work.
    pub fn open(dir: &Path) -> io::Result<SnapshotDir> {
        fs::create_dir_all(dir)?;
        let snapshots = SnapshotDir {
            dir: dir.to_path_buf(),
            pointer: MetaFile::new(dir.join("current"), Durability::Synced),
            publishing: Mutex::new(()),
            incoming: AtomicU64::new(0),
        };
        let keep = snapshots.current()?.map(|(_, path)| path);
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            let is_snapshot_file = path.extension().is_some_and(|e| e == "snap" || e == "partial");
            if is_snapshot_file && Some(&path) != keep.as_ref() {
                fs::remove_file(&path)?;
            }
        }
        Ok(snapshots)
    }

    /// The current snapshot's metadata and file, if any.
    pub fn current(&self) -> io::Result<Option<(Meta, PathBuf)>> {
        Ok(self.pointer.load::<Current>()?.map(|c| (c.meta, self.dir.join(c.file_name))))
    }

    /// A fresh path for a snapshot being written or received.
    pub fn partial_path(&self) -> PathBuf {
        let n = self.incoming.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{}-{n}.partial", std::process::id()))
    }

    /// Makes the complete, fsynced file at `partial` the current snapshot,
    /// unless a newer one is current already. Returns the file's final path.
    pub fn publish(&self, meta: &Meta, partial: &Path) -> io::Result<Option<PathBuf>> {
        let _guard = self.publishing.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((current, _)) = self.current()? {
            if current.last_log_id > meta.last_log_id {
                fs::remove_file(partial)?;
                return Ok(None);
            }
        }
        let file_name = format!("{}.snap", sanitize(&meta.snapshot_id));
        let path = self.dir.join(&file_name);
        fs::rename(partial, &path)?;
        sync_dir(&self.dir)?;
        self.pointer.store(&Current { file_name, meta: meta.clone() })?;
        for entry in fs::read_dir(&self.dir)? {
            let old = entry?.path();
            if old.extension().is_some_and(|e| e == "snap") && old != path {
                fs::remove_file(old)?;
            }
        }
        Ok(Some(path))
    }
}

/// Snapshot ids become file names: keep them to a safe alphabet.
fn sanitize(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}
