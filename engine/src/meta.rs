//! Small metadata files written atomically: the Raft vote and purge point
//! (fsynced: losing them breaks Raft's safety) and the commit index (a hint,
//! written without fsync: a stale or missing value only delays re-applying).
//!
//! File layout: `crc32 (u32 LE) | bincode payload`. A file is replaced by
//! writing `<name>.tmp`, optionally fsyncing it, renaming it over `<name>`
//! and fsyncing the directory, so a crash leaves the old or the new content.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec;

/// Whether a [`MetaFile`] write must be on disk before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file and its directory: survives power loss.
    Synced,
    /// Leave flushing to the kernel: may be lost, never torn.
    Lazy,
}

/// One small value kept in its own file.
#[derive(Debug, Clone)]
pub struct MetaFile {
    path: PathBuf,
    durability: Durability,
}

impl MetaFile {
    /// A metadata file at `path` (created on first write).
    pub fn new(path: impl Into<PathBuf>, durability: Durability) -> MetaFile {
        MetaFile { path: path.into(), durability }
    }

    /// Reads the value; `None` if the file does not exist. A checksum or
    /// decoding failure of a synced file is an error (it must never happen);
    /// for a lazy file it means "no value".
    pub fn load<T: DeserializeOwned>(&self) -> io::Result<Option<T>> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        match decode_checked(&bytes) {
            Ok(value) => Ok(Some(value)),
            Err(reason) if self.durability == Durability::Lazy => {
                tracing::warn!(path = %self.path.display(), %reason, "ignoring unreadable hint file");
                Ok(None)
            }
            Err(reason) => {
                Err(io::Error::new(io::ErrorKind::InvalidData, format!("{}: {reason}", self.path.display())))
            }
        }
    }

    /// Replaces the value atomically, durably if the file is `Synced`.
    pub fn store<T: Serialize>(&self, value: &T) -> io::Result<()> {
        let payload = codec::encode(value).map_err(io::Error::other)?;
        let mut bytes = crc32fast::hash(&payload).to_le_bytes().to_vec();
        bytes.extend_from_slice(&payload);

        let tmp = self.path.with_extension("tmp");
        let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        file.write_all(&bytes)?;
        if self.durability == Durability::Synced {
            file.sync_all()?;
        }
        fs::rename(&tmp, &self.path)?;
        if self.durability == Durability::Synced {
            sync_dir(self.path.parent().unwrap_or(Path::new(".")))?;
        }
        Ok(())
    }
}

/// fsyncs a directory so that file creations and renames in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn decode_checked<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (crc, payload) = bytes.split_at_checked(4).ok_or("file shorter than its checksum")?;
    let expected = u32::from_le_bytes(crc.try_into().map_err(|_| "bad checksum field")?);
    if crc32fast::hash(payload) != expected {
        return Err("checksum mismatch".into());
    }
    codec::decode(payload).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_loads_values() {
        let dir = tempfile::tempdir().unwrap();
        let file = MetaFile::new(dir.path().join("vote"), Durability::Synced);
        assert_eq!(file.load::<u64>().unwrap(), None);
        file.store(&42u64).unwrap();
        file.store(&43u64).unwrap();
        assert_eq!(file.load::<u64>().unwrap(), Some(43));
    }

    #[test]
    fn corrupt_synced_file_is_an_error_and_lazy_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let synced = MetaFile::new(dir.path().join("vote"), Durability::Synced);
        synced.store(&7u64).unwrap();
        let mut bytes = fs::read(dir.path().join("vote")).unwrap();
        *bytes.last_mut().unwrap() ^= 0xff;
        fs::write(dir.path().join("vote"), &bytes).unwrap();
        let err = synced.load::<u64>().unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");

        fs::write(dir.path().join("hint"), &bytes).unwrap();
        let lazy = MetaFile::new(dir.path().join("hint"), Durability::Lazy);
        assert_eq!(lazy.load::<u64>().unwrap(), None);
    }
}
