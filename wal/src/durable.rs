//! File-system steps that must survive a crash: creating a file atomically and making directory
//! changes (creations, renames, deletions) durable.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::{IoContext, WalError};

/// Suffix of a file being created; recovery deletes any such leftover of a crash.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// Creates (or atomically replaces) `dir/name` holding exactly `contents`, and returns a
/// read-write handle to it.
///
/// The bytes go to `name.tmp` first, which is fsynced and renamed into place before the directory
/// is fsynced. A crash therefore leaves either no `name` (or its previous version) or the complete
/// new file, never a partial one: this is what lets purge persist the first index and rotation
/// create a segment without a window in which the file is half-written.
pub(crate) fn create_atomic(dir: &Path, name: &str, contents: &[u8]) -> Result<File, WalError> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let target = dir.join(name);
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&tmp).at(&tmp)?;
    file.write_all_at(contents, 0).at(&tmp)?;
    file.sync_all().at(&tmp)?;
    fs::rename(&tmp, &target).at(&target)?;
    sync_dir(dir)?;
    Ok(file)
}

/// Fsyncs a directory so that entries created, renamed or removed in it survive a crash; the
/// file's own fsync does not cover its directory entry.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Removes a file. Not durable by itself: callers fsync the directory when the order or the
/// completion of removals matters.
pub(crate) fn remove(path: &Path) -> Result<(), WalError> {
    fs::remove_file(path).at(path)
}
