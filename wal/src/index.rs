//! The in-memory view of the log shared by readers and the writer: which indices exist and in
//! which segment each one lives.
//!
//! It sits behind an `RwLock`. Readers hold the read lock while they `pread`, so the writer never
//! cuts or deletes bytes a reader is looking at; the writer takes the write lock only to publish
//! records that are already durable, or to retract records before it removes them from disk, so
//! appends never wait for readers during their writes and fdatasync.

use std::fs::File;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::WalError;
use crate::segment::SegmentIndex;

/// What the log holds.
///
/// Invariant: the segments are sorted by base, contiguous (each one's `end_index` is the next
/// one's base) and together cover `first..next`; the first one may also hold purged records
/// below `first`, which are never returned.
#[derive(Debug)]
pub(crate) struct LogIndex {
    /// Index of the first retained record (`== next` when the log is empty).
    pub(crate) first: u64,
    /// Index the next appended record will get.
    pub(crate) next: u64,
    /// The segments, oldest first; the last one is the one being appended to.
    pub(crate) segments: Vec<SegmentIndex>,
}

/// Where a truncation has to cut the file of the segment that now ends the log.
#[derive(Debug)]
pub(crate) struct Cut {
    /// That segment's file.
    pub(crate) file: Arc<File>,
    /// Its path, for errors.
    pub(crate) path: PathBuf,
    /// Its new length.
    pub(crate) len: u64,
}

impl LogIndex {
    /// The payloads of the records in `range`, clipped to `first..next`.
    pub(crate) fn read_range(&self, range: Range<u64>) -> Result<Vec<Vec<u8>>, WalError> {
        let start = range.start.max(self.first);
        let end = range.end.min(self.next);
        let mut out = Vec::new();
        let mut at = start;
        // The segments are contiguous, so walking forward from the one holding `start` visits
        // exactly the segments that hold the range.
        for segment in self.segments.iter().skip(self.position_of(start)) {
            if at >= end {
                break;
            }
            let stop = end.min(segment.end_index());
            segment.read_records(at..stop, &mut out)?;
            at = stop;
        }
        Ok(out)
    }

    /// Position of the segment holding `index` (the first segment if `index` precedes them).
    fn position_of(&self, index: u64) -> usize {
        self.segments.partition_point(|segment| segment.base <= index).saturating_sub(1)
    }

    /// Forgets records `>= from` (which must lie in `first..next`) and says which segments to
    /// delete (newest first) and where to cut the one that then ends the log.
    pub(crate) fn truncate(&mut self, from: u64) -> (Vec<SegmentIndex>, Cut) {
        let keep = self.position_of(from);
        let doomed = self.segments.drain(keep + 1..).rev().collect();
        let segment = &mut self.segments[keep];
        let kept = usize::try_from(from - segment.base).unwrap_or(segment.offsets.len());
        if let Some(&offset) = segment.offsets.get(kept) {
            segment.end = offset;
        }
        segment.offsets.truncate(kept);
        self.next = from;
        let cut = Cut { file: Arc::clone(&segment.file), path: segment.path.clone(), len: segment.end };
        (doomed, cut)
    }

    /// Makes `first` the first index, emptying the log (and moving `next` forward) if `first`
    /// is at or past its end; returns the segments left holding only purged records.
    pub(crate) fn purge(&mut self, first: u64) -> Vec<SegmentIndex> {
        self.first = first;
        self.next = self.next.max(first);
        let keep_from =
            self.segments.iter().position(|segment| segment.end_index() > first).unwrap_or(self.segments.len());
        self.segments.drain(..keep_from).collect()
    }

    /// Empties the log so that it restarts at `at`; returns all segments, newest first.
    pub(crate) fn reset(&mut self, at: u64) -> Vec<SegmentIndex> {
        self.first = at;
        self.next = at;
        self.segments.drain(..).rev().collect()
    }
}

/// Read access that ignores lock poisoning: every critical section leaves the index consistent
/// before anything in it could panic, so a panicked holder does not make the data suspect.
pub(crate) fn read_lock(index: &RwLock<LogIndex>) -> RwLockReadGuard<'_, LogIndex> {
    index.read().unwrap_or_else(PoisonError::into_inner)
}

/// Write access; see [`read_lock`] on poisoning.
pub(crate) fn write_lock(index: &RwLock<LogIndex>) -> RwLockWriteGuard<'_, LogIndex> {
    index.write().unwrap_or_else(PoisonError::into_inner)
}
