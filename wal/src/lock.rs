//! The lock that keeps two writers out of one log directory.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::error::{IoContext, WalError};

/// Name of the lock file inside the log directory.
const LOCK_FILE: &str = "LOCK";

/// An exclusive `flock` on `dir/LOCK`, held for as long as the value lives.
///
/// Two writers appending to the same segments would interleave frames and destroy the log, so a
/// second [`Wal::open`](crate::Wal::open) of a directory (from this or another process) fails
/// instead. The kernel drops the lock when the process dies, so a crash never leaves it stale.
#[derive(Debug)]
pub(crate) struct DirLock {
    /// Kept open: closing the descriptor releases the lock.
    _file: File,
}

impl DirLock {
    /// Takes the lock, failing at once (no waiting) if someone else holds it.
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock, WalError> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).at(&path)?;
        try_flock(&file)
            .map_err(|err| io::Error::new(err.kind(), format!("the log directory is in use by another Wal: {err}")))
            .at(&path)?;
        Ok(DirLock { _file: file })
    }
}

/// Non-blocking exclusive `flock(2)`.
#[allow(unsafe_code)]
fn try_flock(file: &File) -> io::Result<()> {
    // SAFETY: flock only reads the descriptor number, which `file` keeps open for this call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
