//! The first-index file: the durable record of how far the log has been purged.
//!
//! Segments are deleted whole, so after `purge(upto)` the oldest remaining segment may still hold
//! records `<= upto`. This file stores `upto + 1` so that a reopened log starts exactly there. It
//! holds a single [`header`] with the `DSWALFIX` magic and is replaced atomically.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use crate::durable;
use crate::error::WalError;
use crate::header::{self, FIRST_INDEX_MAGIC};

/// Name of the file inside the log directory.
pub(crate) const FILE_NAME: &str = "FIRST_INDEX";

/// The stored first index, or `None` if the log was never purged.
pub(crate) fn read(dir: &Path) -> Result<Option<u64>, WalError> {
    let path = dir.join(FILE_NAME);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(WalError::Io { path, source }),
    };
    // The file is replaced by rename, never written in place, so a bad one is real damage.
    header::decode(FIRST_INDEX_MAGIC, &bytes).map(Some).map_err(|fault| WalError::corrupt(&path, 0, fault.to_string()))
}

/// Durably records `first` as the log's first index.
pub(crate) fn write(dir: &Path, first: u64) -> Result<(), WalError> {
    durable::create_atomic(dir, FILE_NAME, &header::encode(FIRST_INDEX_MAGIC, first))?;
    Ok(())
}
