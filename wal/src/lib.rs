//! Placeholder: the WAL is being written. API below is the contract.
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Tuning knobs of the log.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// A segment is sealed and a new one started once it grows past this size.
    pub segment_bytes_max: u64,
    /// Largest accepted record payload.
    pub record_bytes_max: u32,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions { segment_bytes_max: 64 << 20, record_bytes_max: 64 << 20 }
    }
}

/// Errors of the log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An I/O call failed.
    #[error("wal io error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// Corruption that is not a torn tail.
    #[error("wal corrupt: {path} at offset {offset}: {reason}")]
    Corrupt { path: PathBuf, offset: u64, reason: String },
    /// Record above the limit.
    #[error("record of {len} bytes exceeds the limit of {max}")]
    RecordTooLarge { len: usize, max: u32 },
    /// The writer thread is gone.
    #[error("wal is closed")]
    Closed,
}

/// Completion callback for [`Wal::append_with`].
pub type AppendDone = Box<dyn FnOnce(Result<Range<u64>, WalError>) + Send + 'static>;

/// The log handle.
#[derive(Clone)]
pub struct Wal {}

impl Wal {
    pub fn open(_dir: impl AsRef<Path>, _opts: WalOptions) -> Result<Wal, WalError> { todo!() }
    pub fn first_index(&self) -> u64 { todo!() }
    pub fn next_index(&self) -> u64 { todo!() }
    pub fn append(&self, _records: Vec<Vec<u8>>) -> Result<Range<u64>, WalError> { todo!() }
    pub fn append_with(&self, _records: Vec<Vec<u8>>, _done: AppendDone) { todo!() }
    pub fn read(&self, _index: u64) -> Result<Option<Vec<u8>>, WalError> { todo!() }
    pub fn read_range(&self, _range: Range<u64>) -> Result<Vec<Vec<u8>>, WalError> { todo!() }
    pub fn truncate(&self, _from: u64) -> Result<(), WalError> { todo!() }
    pub fn purge(&self, _upto: u64) -> Result<(), WalError> { todo!() }
}
