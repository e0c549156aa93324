//! The error type of the log and the helper that attaches a path to I/O errors.

use std::io;
use std::path::{Path, PathBuf};

/// Errors of the log.
///
/// Every variant that concerns a file names it (and, for corruption, the byte offset), because the
/// operator who reads the message has to find and inspect that file.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An I/O call failed. On the write path this also stops the writer: after a failed write or
    /// fdatasync the kernel may have dropped dirty pages, so the on-disk state is unknown until
    /// the log is reopened and recovered.
    #[error("wal io error on {path}: {source}")]
    Io {
        /// The file or directory the call was about.
        path: PathBuf,
        /// What the operating system reported.
        source: io::Error,
    },
    /// Damage that is not a torn tail: data that was once durable can no longer be trusted, so the
    /// log refuses to guess (see the crate docs for how recovery tells the two apart).
    #[error("wal corrupt: {path} at offset {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the damaged frame or header within `path`.
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// A record is larger than [`WalOptions::record_bytes_max`](crate::WalOptions); the whole
    /// append request is rejected and nothing of it is written.
    #[error("record of {len} bytes exceeds the limit of {max} bytes")]
    RecordTooLarge {
        /// Size of the offending record.
        len: usize,
        /// The configured limit.
        max: u32,
    },
    /// The writer thread no longer accepts work: the log is being dropped, or an earlier write
    /// failed (that request got the [`WalError::Io`]) and the log must be reopened.
    #[error("wal is closed")]
    Closed,
}

impl WalError {
    /// A copy of this error, so one failed group commit can fail every request in the group.
    /// `io::Error` is not `Clone`, so the copy keeps its kind and message.
    pub(crate) fn duplicate(&self) -> WalError {
        match self {
            WalError::Io { path, source } => {
                WalError::Io { path: path.clone(), source: io::Error::new(source.kind(), source.to_string()) }
            }
            WalError::Corrupt { path, offset, reason } => {
                WalError::Corrupt { path: path.clone(), offset: *offset, reason: reason.clone() }
            }
            WalError::RecordTooLarge { len, max } => WalError::RecordTooLarge { len: *len, max: *max },
            WalError::Closed => WalError::Closed,
        }
    }

    /// Shorthand for a [`WalError::Corrupt`].
    pub(crate) fn corrupt(path: &Path, offset: u64, reason: impl Into<String>) -> WalError {
        WalError::Corrupt { path: path.to_path_buf(), offset, reason: reason.into() }
    }
}

/// Attaches the path an I/O call was about, so no error reaches the user without a file name.
pub(crate) trait IoContext<T> {
    /// Converts an `io::Result` into a `WalError::Io` naming `path`.
    fn at(self, path: &Path) -> Result<T, WalError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T, WalError> {
        self.map_err(|source| WalError::Io { path: path.to_path_buf(), source })
    }
}
