//! The writer thread: the only code that changes the log's files.
//!
//! Raft needs its log writes applied in the order they were issued, and group commit needs one
//! place where concurrent appends meet. Both come from funnelling every mutation through one
//! queue served by one thread. Per turn the thread takes the next request; if it is an append, it
//! also drains every append already queued behind it (up to [`GROUP_BYTES_MAX`]), writes all
//! their frames with one write call per segment, runs a single fdatasync, publishes the records
//! to readers and only then completes each request.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, RwLock};

use tracing::error;

use crate::durable;
use crate::error::{IoContext, WalError};
use crate::first_index;
use crate::frame;
use crate::header::{self, HEADER_LEN_U64, SEGMENT_MAGIC};
use crate::index::{read_lock, write_lock, LogIndex};
use crate::lock::DirLock;
use crate::segment::{self, SegmentIndex};
use crate::{AppendDone, WalOptions};

/// Payload bytes after which the writer stops adding queued appends to a group: bounds the memory
/// one group needs and the wait of the requests queued behind it. A single larger request still
/// forms a group of its own.
const GROUP_BYTES_MAX: usize = 8 << 20;

/// Where a truncate or purge reports back to its blocked caller.
pub(crate) type Reply = SyncSender<Result<(), WalError>>;

/// A unit of work for the writer thread.
pub(crate) enum Request {
    /// Append `records` at the end of the log, then call `done`.
    Append { records: Vec<Vec<u8>>, done: AppendDone },
    /// Remove records `>= from`.
    Truncate { from: u64, reply: Reply },
    /// Remove records `<= upto`.
    Purge { upto: u64, reply: Reply },
}

impl Request {
    /// Completes the request with `error` without doing it.
    pub(crate) fn fail(self, error: WalError) {
        match self {
            Request::Append { done, .. } => complete(done, Err(error)),
            Request::Truncate { reply, .. } | Request::Purge { reply, .. } => {
                // The caller may have given up waiting; nothing else needs the answer.
                let _ = reply.send(Err(error));
            }
        }
    }
}

/// An append taken off the queue, waiting for its group's fdatasync.
struct PendingAppend {
    records: Vec<Vec<u8>>,
    done: AppendDone,
}

/// State of the writer thread.
pub(crate) struct Writer {
    /// The log directory.
    dir: PathBuf,
    /// Size limits.
    opts: WalOptions,
    /// Shared with readers; the writer is its only mutator.
    index: Arc<RwLock<LogIndex>>,
    /// Set after a write-path error: from then on every request fails with `Closed`, because
    /// after a failed write or fdatasync the file contents are unknown until recovery.
    failed: bool,
    /// Held for the thread's lifetime, so the directory stays locked until the last write ends.
    _lock: DirLock,
}

impl Writer {
    /// A writer for the recovered log of `dir`.
    pub(crate) fn new(dir: PathBuf, opts: WalOptions, index: Arc<RwLock<LogIndex>>, lock: DirLock) -> Writer {
        Writer { dir, opts, index, failed: false, _lock: lock }
    }

    /// Serves requests until every sender is gone (the last `Wal` handle was dropped).
    pub(crate) fn run(mut self, requests: Receiver<Request>) {
        // A non-append request met while draining a group; it is served right after the group,
        // which keeps the execution order equal to the queue order.
        let mut carried = None;
        loop {
            let request = match carried.take() {
                Some(request) => request,
                None => match requests.recv() {
                    Ok(request) => request,
                    Err(_) => return,
                },
            };
            match request {
                Request::Append { records, done } => {
                    let mut bytes = payload_bytes(&records);
                    let mut group = vec![PendingAppend { records, done }];
                    while bytes < GROUP_BYTES_MAX {
                        match requests.try_recv() {
                            Ok(Request::Append { records, done }) => {
                                bytes += payload_bytes(&records);
                                group.push(PendingAppend { records, done });
                            }
                            Ok(other) => {
                                carried = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit_group(group);
                }
                Request::Truncate { from, reply } => {
                    let _ = reply.send(self.mutate(|writer| writer.truncate(from)));
                }
                Request::Purge { upto, reply } => {
                    let _ = reply.send(self.mutate(|writer| writer.purge(upto)));
                }
            }
        }
    }

    /// Runs a mutation unless the writer has failed before; a failure stops the writer.
    fn mutate<T>(&mut self, op: impl FnOnce(&mut Self) -> Result<T, WalError>) -> Result<T, WalError> {
        if self.failed {
            return Err(WalError::Closed);
        }
        op(self).inspect_err(|err| {
            error!(dir = %self.dir.display(), error = %err,
                "wal: write failed; refusing further writes until the log is reopened");
            self.failed = true;
        })
    }

    /// Makes a group of appends durable with one fdatasync and completes each of them.
    fn commit_group(&mut self, group: Vec<PendingAppend>) {
        let max = self.opts.record_bytes_max;
        let mut accepted = Vec::with_capacity(group.len());
        for pending in group {
            let too_large =
                pending.records.iter().map(Vec::len).find(|&len| u32::try_from(len).map_or(true, |len| len > max));
            match too_large {
                // Rejected as a whole, so a request never ends up half-written.
                Some(len) => complete(pending.done, Err(WalError::RecordTooLarge { len, max })),
                None => accepted.push(pending),
            }
        }
        match self.mutate(|writer| writer.write_records(&accepted)) {
            Ok(ranges) => {
                for (pending, range) in accepted.into_iter().zip(ranges) {
                    complete(pending.done, Ok(range));
                }
            }
            Err(err) => {
                for pending in accepted {
                    complete(pending.done, Err(err.duplicate()));
                }
            }
        }
    }

    /// Writes the records of `group`, assigning consecutive indices in queue order; returns each
    /// request's indices once they are durable and published.
    fn write_records(&mut self, group: &[PendingAppend]) -> Result<Vec<Range<u64>>, WalError> {
        let mut next = read_lock(&self.index).next;
        if group.iter().all(|pending| pending.records.is_empty()) {
            return Ok(vec![next..next; group.len()]);
        }
        let mut tail = self.open_tail(next)?;
        let mut ranges = Vec::with_capacity(group.len());
        for pending in group {
            let start = next;
            for payload in &pending.records {
                if tail.is_full(self.opts.segment_bytes_max) {
                    // Rotate: the sealed segment is fsynced whole before its successor exists,
                    // which is what lets recovery demand that every sealed segment be intact.
                    self.commit(&mut tail, next, Durability::Sealed)?;
                    tail = self.create_segment(next)?;
                }
                tail.push(next, payload)?;
                next += 1;
            }
            ranges.push(start..next);
        }
        self.commit(&mut tail, next, Durability::Data)?;
        Ok(ranges)
    }

    /// The segment to append to: the last one, or a new one starting at `next` if there is none.
    fn open_tail(&mut self, next: u64) -> Result<Tail, WalError> {
        // Bound first so the read lock is released before `create_segment` takes the write lock.
        let last = read_lock(&self.index).segments.last().map(Tail::resume);
        match last {
            Some(tail) => Ok(tail),
            None => self.create_segment(next),
        }
    }

    /// Durably creates an empty segment whose first record will be `base` and makes it the last.
    fn create_segment(&mut self, base: u64) -> Result<Tail, WalError> {
        let name = segment::file_name(base);
        let header = header::encode(SEGMENT_MAGIC, base);
        let file = durable::create_atomic(&self.dir, &name, &header)?;
        let segment = SegmentIndex {
            base,
            path: self.dir.join(name),
            file: Arc::new(file),
            offsets: Vec::new(),
            end: HEADER_LEN_U64,
        };
        let tail = Tail::resume(&segment);
        write_lock(&self.index).segments.push(segment);
        Ok(tail)
    }

    /// Writes the frames buffered in `tail` with one call, syncs, and publishes them to readers
    /// together with the new `next` index. Nothing is visible to readers before it is durable.
    fn commit(&self, tail: &mut Tail, next: u64, durability: Durability) -> Result<(), WalError> {
        tail.file.write_all_at(&tail.frames, tail.written).at(&tail.path)?;
        tail.written += tail.frames.len() as u64;
        tail.frames.clear();
        match durability {
            Durability::Data => tail.file.sync_data(),
            Durability::Sealed => tail.file.sync_all(),
        }
        .at(&tail.path)?;
        let mut index = write_lock(&self.index);
        if let Some(segment) = index.segments.last_mut() {
            segment.offsets.append(&mut tail.offsets);
            segment.end = tail.written;
        }
        index.next = next;
        Ok(())
    }

    /// Removes records `>= from`; durable when it returns.
    ///
    /// Readers stop seeing the records first; then whole segments are deleted newest first, each
    /// deletion made durable before the next, and finally the segment that now ends the log is
    /// cut. A crash at any step therefore leaves a prefix of the old log, never a log with a hole.
    fn truncate(&mut self, from: u64) -> Result<(), WalError> {
        let mut index = write_lock(&self.index);
        if from >= index.next {
            return Ok(());
        }
        if from < index.first {
            // Only possible if Raft truncates below its own snapshot; nothing is left, and the
            // log restarts empty at `from`, recorded last so that a crash leaves a prefix.
            let doomed = index.reset(from);
            drop(index);
            self.remove_newest_first(&doomed)?;
            return first_index::write(&self.dir, from);
        }
        let (doomed, cut) = index.truncate(from);
        drop(index);
        self.remove_newest_first(&doomed)?;
        cut.file.set_len(cut.len).at(&cut.path)?;
        cut.file.sync_all().at(&cut.path)
    }

    /// Deletes segments in the given (newest first) order, each one durably.
    fn remove_newest_first(&self, doomed: &[SegmentIndex]) -> Result<(), WalError> {
        for segment in doomed {
            durable::remove(&segment.path)?;
            durable::sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Removes records `<= upto`; durable when it returns.
    ///
    /// The first-index file is written first: it alone makes the purge durable and exact, and it
    /// may point past the end of the log, which then restarts empty there. Deleting the segments
    /// that became useless only reclaims space; recovery redoes it after a crash.
    fn purge(&mut self, upto: u64) -> Result<(), WalError> {
        let first = upto.saturating_add(1);
        if first <= read_lock(&self.index).first {
            return Ok(());
        }
        first_index::write(&self.dir, first)?;
        let doomed = write_lock(&self.index).purge(first);
        for segment in &doomed {
            durable::remove(&segment.path)?;
        }
        if !doomed.is_empty() {
            durable::sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

/// How hard [`Writer::commit`] syncs.
#[derive(Clone, Copy)]
enum Durability {
    /// fdatasync: the data and the file size, enough for an append to be durable.
    Data,
    /// fsync: everything, for a segment that is being sealed.
    Sealed,
}

/// The segment being appended to, with the frames encoded for it but not yet written.
struct Tail {
    /// The segment file's path, for errors.
    path: PathBuf,
    /// The segment file.
    file: Arc<File>,
    /// Bytes already in the file (header included).
    written: u64,
    /// Whether the file already holds a record; a segment is never sealed empty.
    has_records: bool,
    /// Encoded frames to write at `written`.
    frames: Vec<u8>,
    /// File offsets of the frames in `frames`.
    offsets: Vec<u64>,
}

impl Tail {
    /// Continues appending to `segment`.
    fn resume(segment: &SegmentIndex) -> Tail {
        Tail {
            path: segment.path.clone(),
            file: Arc::clone(&segment.file),
            written: segment.end,
            has_records: !segment.offsets.is_empty(),
            frames: Vec::new(),
            offsets: Vec::new(),
        }
    }

    /// Size the file will have once `frames` is written.
    fn len(&self) -> u64 {
        self.written + self.frames.len() as u64
    }

    /// Whether the next record belongs in a new segment. A segment may exceed the limit by its
    /// last record, and always takes at least one record, so rotation cannot loop.
    fn is_full(&self, segment_bytes_max: u64) -> bool {
        self.len() >= segment_bytes_max && (self.has_records || !self.offsets.is_empty())
    }

    /// Encodes record `index` into the write buffer.
    fn push(&mut self, index: u64, payload: &[u8]) -> Result<(), WalError> {
        let offset = self.len();
        frame::encode(&mut self.frames, index, payload)
            .map_err(|_| WalError::RecordTooLarge { len: payload.len(), max: u32::MAX })?;
        self.offsets.push(offset);
        Ok(())
    }
}

/// Total payload bytes of an append request.
fn payload_bytes(records: &[Vec<u8>]) -> usize {
    records.iter().map(Vec::len).sum()
}

/// Runs an append's completion callback. A panicking callback is logged and contained: it must not
/// take down the thread every other request depends on.
fn complete(done: AppendDone, result: Result<Range<u64>, WalError>) {
    if panic::catch_unwind(AssertUnwindSafe(|| done(result))).is_err() {
        error!("wal: an append completion callback panicked");
    }
}
