//! Segmented, CRC-framed, group-committed write-ahead log: the durable source of truth for the
//! Raft log.
//!
//! Records are opaque byte strings addressed by consecutive `u64` indices (Raft log indices). The
//! log holds the records `first_index()..next_index()`: appends add at the end,
//! [`Wal::truncate`] removes a suffix (a Raft log conflict) and [`Wal::purge`] removes a prefix
//! (after a snapshot).
//!
//! # What is durable when
//!
//! - When [`Wal::append`] returns `Ok`, or an [`AppendDone`] callback receives `Ok`, the records
//!   and every record before them have been written and fdatasync'ed: they survive a killed
//!   process and a power failure. Readers see a record only once it is durable.
//! - [`Wal::truncate`] and [`Wal::purge`] are durable when they return: after a crash the log
//!   never shows truncated records again and never starts before a purge point.
//! - A request that fails may or may not have taken effect. After an I/O error on the write path
//!   the log refuses further writes ([`WalError::Closed`]) until it is reopened, because after a
//!   failed fdatasync the kernel may have discarded the unwritten pages.
//!
//! All mutations run on one writer thread, in the order they were submitted, as Raft requires.
//! Concurrent appends are group-committed: the writer drains every queued append, writes their
//! frames with one write call per segment, runs one fdatasync for all of them, and then completes
//! each request. Reads do not go through the writer: they use an in-memory index of record
//! offsets and positional reads, and verify each record's checksum again.
//!
//! # On-disk layout
//!
//! ```text
//! <dir>/00000000000000000001.wal  segments, named by base index (20 digits: names sort like indices)
//! <dir>/FIRST_INDEX               first retained index, written by purge (absent if never purged)
//! <dir>/LOCK                      flock'ed while a Wal is open: two writers would destroy the log
//! <dir>/*.tmp                     files being created (write, fsync, rename, fsync dir)
//! ```
//!
//! A segment is a 24-byte header followed by frames, back to back. All integers are
//! little-endian; CRC32 is the IEEE polynomial (crc32fast).
//!
//! ```text
//! header: magic "DSWALSEG" (8) | version u32 = 1 | base index u64 | CRC32 of the 20 bytes before
//! frame:  payload length N u32 | record index u64 | CRC32 of length, index and payload u32 | payload (N)
//! ```
//!
//! `FIRST_INDEX` is a single such header with the magic `"DSWALFIX"`, carrying the first index.
//! Segments are deleted whole, so this file is what makes a purge exact across a reopen.
//!
//! A segment is sealed (fsynced) once it reaches `segment_bytes_max`, and its successor is created
//! durably (file and directory fsynced) before any record goes into it. Records longer than
//! `record_bytes_max` are refused on append. A length read from disk is checked against the
//! bytes actually present before anything is allocated, so a garbage length costs nothing.
//!
//! # Recovery
//!
//! [`Wal::open`] reads every segment and verifies every header, checksum and record index. It
//! tells a torn tail from corruption by where the damage is:
//!
//! - **Torn tail, repaired.** A crash can only tear the last write, which ends the last segment.
//!   There, a frame that runs past the end of the file, or a bad frame with no valid frame
//!   anywhere after it, is cut off with a `tracing::warn!` naming the file and offset, and is
//!   never returned as data. Such a record was never acknowledged: acknowledgement follows
//!   fdatasync. A last segment holding nothing but an incomplete header (an interrupted rotation)
//!   is removed the same way.
//! - **Corruption, refused.** A bad frame followed by a valid one, any bad frame or header in a
//!   sealed segment, a record index out of sequence, or segments that skip indices make `open`
//!   return [`WalError::Corrupt`] naming the file and offset. Acknowledged data is damaged, and
//!   guessing would hand Raft a log with holes; the node must be repaired (e.g. from a peer).
//!   One consequence: if a power failure persisted the pages of an unacknowledged group write
//!   out of order, leaving a hole before a valid frame, this is reported as corruption too,
//!   because it cannot be told apart from damage to acknowledged data.
//! - **Interrupted operations, finished.** Leftover `*.tmp` files are deleted. Segments holding
//!   only records below the first index (a purge whose deletions were cut short) are deleted.
//!   Truncation deletes segments newest first and cuts the remaining file last, so any crash
//!   leaves a prefix of the log, which needs no repair.
#![deny(missing_docs, unsafe_code)]
#![deny(clippy::cast_possible_truncation, clippy::cast_possible_wrap, clippy::cast_sign_loss, clippy::cast_lossless)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod durable;
mod error;
mod first_index;
mod frame;
mod header;
mod index;
mod lock;
mod recovery;
mod segment;
mod writer;

use std::fs;
use std::ops::Range;
use std::path::Path;
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, RwLock};
use std::thread::{self, JoinHandle};

pub use error::WalError;

use error::IoContext;
use index::{read_lock, LogIndex};
use lock::DirLock;
use writer::{Reply, Request, Writer};

/// Tuning knobs of the log.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// A segment is sealed and a new one started once it grows past this size. Purge frees space
    /// a segment at a time, so smaller segments free it sooner; larger ones mean fewer files and
    /// fewer rotations (each costs a few fsyncs). Default 64 MiB.
    pub segment_bytes_max: u64,
    /// Largest accepted record payload. It keeps one request from monopolising the writer and its
    /// memory; larger records fail with [`WalError::RecordTooLarge`]. Default 64 MiB.
    pub record_bytes_max: u32,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions { segment_bytes_max: 64 << 20, record_bytes_max: 64 << 20 }
    }
}

/// Completion callback for [`Wal::append_with`]: receives the indices assigned to the records, or
/// the error. It runs on the writer thread, so it should be quick and must not call the blocking
/// methods of the same log ([`Wal::append`], [`Wal::truncate`], [`Wal::purge`]), which would wait
/// for the thread it is running on.
pub type AppendDone = Box<dyn FnOnce(Result<Range<u64>, WalError>) + Send + 'static>;

/// A handle to an open log.
///
/// Cloning is cheap and every clone refers to the same log, so the handle can be shared by the
/// Raft storage and its log readers. The log closes when the last clone is dropped: the writer
/// finishes the queued requests, then releases the directory.
#[derive(Clone)]
pub struct Wal {
    inner: Arc<Inner>,
}

/// What the clones of a [`Wal`] share.
struct Inner {
    /// The in-memory index, also held by the writer.
    index: Arc<RwLock<LogIndex>>,
    /// The writer's queue; an `Option` only so that `drop` can close it before joining.
    requests: Option<Sender<Request>>,
    /// The writer thread, joined on drop so that a reopen never races the old writer.
    writer: Option<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends the writer's loop once it has served what is queued.
        drop(self.requests.take());
        if let Some(writer) = self.writer.take() {
            // The last handle may be dropped by an append callback, i.e. on the writer thread
            // itself, which must not wait for its own end.
            if writer.thread().id() != thread::current().id() {
                // A panic on the writer thread was already reported; there is nothing to add.
                let _ = writer.join();
            }
        }
    }
}

impl Wal {
    /// Opens the log in `dir`, creating the directory if it is missing, and recovers it (see the
    /// crate docs): torn tails are cut off, interrupted operations finished, corruption refused.
    ///
    /// # Errors
    ///
    /// [`WalError::Corrupt`] if recovery finds damage other than a torn tail; [`WalError::Io`]
    /// if the directory cannot be created or read, or another `Wal` (in this or another
    /// process) has it open.
    pub fn open(dir: impl AsRef<Path>, opts: WalOptions) -> Result<Wal, WalError> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.is_dir() {
            fs::create_dir_all(&dir).at(&dir)?;
            // The new directory's own entry must be durable too, or a crash could lose the log.
            let parent = dir.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
            durable::sync_dir(parent)?;
        }
        let lock = DirLock::acquire(&dir)?;
        let index = Arc::new(RwLock::new(recovery::recover(&dir)?));
        let (requests, queue) = mpsc::channel();
        let writer = Writer::new(dir.clone(), opts, Arc::clone(&index), lock);
        let writer =
            thread::Builder::new().name("dsync-wal-writer".into()).spawn(move || writer.run(queue)).at(&dir)?;
        Ok(Wal { inner: Arc::new(Inner { index, requests: Some(requests), writer: Some(writer) }) })
    }

    /// Index of the first retained record; equals [`Wal::next_index`] when the log is empty.
    /// Raft needs it to know which entries it must send as a snapshot instead. A fresh log starts
    /// at 0.
    #[must_use]
    pub fn first_index(&self) -> u64 {
        read_lock(&self.inner.index).first
    }

    /// Index the next appended record will get, i.e. one past the last durable record.
    #[must_use]
    pub fn next_index(&self) -> u64 {
        read_lock(&self.inner.index).next
    }

    /// Appends `records` and blocks until they are durable (fdatasync'ed); returns the
    /// consecutive indices they got. Concurrent callers share one fdatasync (group commit), so
    /// many appending threads cost little more than one. Must not be called from an
    /// [`AppendDone`] callback.
    ///
    /// # Errors
    ///
    /// [`WalError::RecordTooLarge`] (nothing of the request is written), [`WalError::Io`] if
    /// the write or fdatasync failed, [`WalError::Closed`] if the log no longer accepts writes.
    pub fn append(&self, records: Vec<Vec<u8>>) -> Result<Range<u64>, WalError> {
        let (reply, outcome) = mpsc::sync_channel(1);
        self.append_with(
            records,
            Box::new(move |result| {
                // `append` is still waiting for the answer, so the receiver exists.
                let _ = reply.send(result);
            }),
        );
        outcome.recv().unwrap_or(Err(WalError::Closed))
    }

    /// Queues `records` for appending and returns at once; `done` runs on the writer thread once
    /// they are durable, or with the error. This is what lets an async caller (the Raft engine)
    /// submit appends without parking a thread per write. Requests are executed in submission
    /// order. Only if the log is already closed does `done` run right here, on the caller's
    /// thread, with [`WalError::Closed`].
    pub fn append_with(&self, records: Vec<Vec<u8>>, done: AppendDone) {
        self.submit(Request::Append { records, done });
    }

    /// The record at `index`, or `None` if it is outside `first_index()..next_index()`. A
    /// checksum mismatch on disk is [`WalError::Corrupt`], never wrong data.
    ///
    /// # Errors
    ///
    /// [`WalError::Corrupt`] naming file and offset if the record fails its checks;
    /// [`WalError::Io`] if the read fails.
    pub fn read(&self, index: u64) -> Result<Option<Vec<u8>>, WalError> {
        let Some(end) = index.checked_add(1) else {
            return Ok(None);
        };
        Ok(self.read_range(index..end)?.pop())
    }

    /// The records of `range`, clipped to `first_index()..next_index()`; contiguous records of a
    /// segment are fetched with one positional read, which is what Raft replication wants.
    /// Each checksum is verified.
    ///
    /// # Errors
    ///
    /// As for [`Wal::read`], for the first record that fails.
    pub fn read_range(&self, range: Range<u64>) -> Result<Vec<Vec<u8>>, WalError> {
        read_lock(&self.inner.index).read_range(range)
    }

    /// Removes every record `>= from`, as Raft does when a new leader's log conflicts with this
    /// one; `next_index()` becomes `from` if it was larger. Durable when it returns. Executed in
    /// order with the appends submitted before it.
    ///
    /// # Errors
    ///
    /// [`WalError::Io`] if a file operation failed (the log then refuses further writes), or
    /// [`WalError::Closed`].
    pub fn truncate(&self, from: u64) -> Result<(), WalError> {
        self.control(|reply| Request::Truncate { from, reply })
    }

    /// Removes every record `<= upto`, once a snapshot covers them; `first_index()` becomes
    /// `upto + 1` (exactly, also after a reopen). If that is at or past the end of the log, the
    /// log becomes empty with `first_index() == next_index() == upto + 1`, so that a follower
    /// that installed a snapshot past its log continues appending right after it. Durable when it
    /// returns.
    ///
    /// # Errors
    ///
    /// As for [`Wal::truncate`].
    pub fn purge(&self, upto: u64) -> Result<(), WalError> {
        self.control(|reply| Request::Purge { upto, reply })
    }

    /// Sends a truncate or purge to the writer and waits for its answer.
    fn control(&self, request: impl FnOnce(Reply) -> Request) -> Result<(), WalError> {
        let (reply, outcome) = mpsc::sync_channel(1);
        self.submit(request(reply));
        outcome.recv().unwrap_or(Err(WalError::Closed))
    }

    /// Queues a request, failing it with `Closed` if the writer is gone.
    fn submit(&self, request: Request) {
        let unsent = match &self.inner.requests {
            Some(requests) => requests.send(request).err().map(|err| err.0),
            None => Some(request),
        };
        if let Some(request) = unsent {
            request.fail(WalError::Closed);
        }
    }
}
