//! Recovery on open: rebuilding the in-memory index from the directory, finishing or undoing
//! whatever a crash interrupted, and refusing to start on real corruption.
//!
//! The rules (also in the crate docs):
//!
//! - Leftover `*.tmp` files are half-created segments or first-index files; they never held an
//!   acknowledged byte and are deleted.
//! - Segments that only hold records below the first index are the remains of a purge that was
//!   durable (its first-index file was written) but whose deletions were not; they are deleted.
//! - Only the last segment may end in a torn write. A bad frame there is cut off (with a warning
//!   naming file and offset) if no valid frame follows it: a crash can only tear the final write.
//!   If a valid frame does follow, the damage is in the middle and the log reports
//!   [`WalError::Corrupt`]. The same applies to a last segment whose header is incomplete and
//!   which holds nothing else: its creation was cut short, so it is removed.
//! - Every other defect — a bad frame or header in a sealed segment, a record index out of
//!   sequence, a segment boundary that skips indices — is [`WalError::Corrupt`].

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::{debug, warn};

use crate::durable::{self, TMP_SUFFIX};
use crate::error::{IoContext, WalError};
use crate::first_index;
use crate::frame::{self, le_u64, FRAME_HEADER_LEN};
use crate::header::{self, HEADER_LEN, SEGMENT_MAGIC};
use crate::index::LogIndex;
use crate::segment::{self, SegmentIndex};

/// Rebuilds the log of `dir` (which must exist), repairing torn tails on disk.
pub(crate) fn recover(dir: &Path) -> Result<LogIndex, WalError> {
    let mut listing = list_segments(dir)?;
    // Never purged: the log starts at its oldest segment (or at 0 when there is none).
    let first = first_index::read(dir)?.or_else(|| listing.first().map(|(base, _)| *base)).unwrap_or(0);

    // Finish an interrupted purge: a segment followed by one whose base is <= `first` holds only
    // purged records. Decided by name, so their (irrelevant) contents are not even read.
    let purged = listing.windows(2).take_while(|pair| pair[1].0 <= first).count();
    for (_, path) in listing.drain(..purged) {
        debug!(file = %path.display(), "wal: deleting a segment left over from a purge");
        durable::remove(&path)?;
    }

    let count = listing.len();
    let mut segments = Vec::with_capacity(count);
    for (position, (base, path)) in listing.into_iter().enumerate() {
        let is_last = position + 1 == count;
        if let Some(segment) = scan_segment(dir, path, base, is_last)? {
            segments.push(segment);
        }
    }
    // A last segment with no record at or past `first` is a purge (or a reset past the end of
    // the log) that did not get to delete it.
    let mut removed = purged > 0;
    if segments.last().is_some_and(|last| last.end_index() <= first) {
        if let Some(stale) = segments.pop() {
            debug!(file = %stale.path.display(), "wal: deleting a fully purged segment");
            durable::remove(&stale.path)?;
            removed = true;
        }
    }
    if removed {
        durable::sync_dir(dir)?;
    }

    check_contiguous(&segments, first)?;
    let next = segments.last().map_or(first, SegmentIndex::end_index);
    Ok(LogIndex { first, next, segments })
}

/// The segment files of `dir` sorted by base index, after deleting leftover temporary files.
fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut segments = Vec::new();
    let mut removed_tmp = false;
    for entry in fs::read_dir(dir).at(dir)? {
        let path = entry.at(dir)?.path();
        let Some(name) = path.file_name().and_then(|name| name.to_str()) else {
            continue;
        };
        if name.ends_with(TMP_SUFFIX) {
            debug!(file = %path.display(), "wal: deleting an unfinished temporary file");
            durable::remove(&path)?;
            removed_tmp = true;
        } else if let Some(base) = segment::parse_file_name(name) {
            segments.push((base, path));
        }
    }
    if removed_tmp {
        durable::sync_dir(dir)?;
    }
    segments.sort_unstable_by_key(|(base, _)| *base);
    Ok(segments)
}

/// Verifies one segment and indexes its records; cuts off a torn tail if `is_last`.
///
/// Returns `None` if the segment was the remains of an interrupted creation and was removed.
/// The file is read whole: segments are bounded by `segment_bytes_max` plus one record, and
/// every byte has to be checksummed anyway.
fn scan_segment(dir: &Path, path: PathBuf, base: u64, is_last: bool) -> Result<Option<SegmentIndex>, WalError> {
    let bytes = fs::read(&path).at(&path)?;
    match header::decode(SEGMENT_MAGIC, &bytes) {
        Ok(found) if found == base => {}
        Ok(found) => {
            return Err(WalError::corrupt(
                &path,
                0,
                format!("header says base index {found} but the file name says {base}"),
            ))
        }
        // Segments are created by rename, so this takes an outside failure; but a last segment
        // with nothing past a bad header cannot hold a record, so it is safe to drop.
        Err(fault) if is_last && bytes.len() <= HEADER_LEN => {
            warn!(file = %path.display(), offset = 0, %fault,
                "wal: removing a last segment whose header is incomplete");
            durable::remove(&path)?;
            durable::sync_dir(dir)?;
            return Ok(None);
        }
        Err(fault) => return Err(WalError::corrupt(&path, 0, fault.to_string())),
    }

    let (offsets, end) = scan_frames(&path, &bytes, base, is_last)?;
    let file = OpenOptions::new().read(true).write(true).open(&path).at(&path)?;
    let end = end as u64;
    if end < bytes.len() as u64 {
        // Cut durably, so that the next append cannot leave a valid frame behind torn bytes
        // (which a later recovery would have to call mid-file corruption).
        file.set_len(end).at(&path)?;
        file.sync_all().at(&path)?;
    }
    Ok(Some(SegmentIndex { base, path, file: Arc::new(file), offsets, end }))
}

/// Walks the frames of a segment; returns each record's offset and where the valid frames end.
fn scan_frames(path: &Path, bytes: &[u8], base: u64, is_last: bool) -> Result<(Vec<u64>, usize), WalError> {
    let mut offsets = Vec::new();
    let mut pos = HEADER_LEN;
    let mut expected = base;
    while pos < bytes.len() {
        let at = pos as u64;
        match frame::decode(&bytes[pos..]) {
            Ok(frame) if frame.index == expected => {
                offsets.push(at);
                pos += frame.len;
                expected += 1;
            }
            Ok(frame) => {
                return Err(WalError::corrupt(
                    path,
                    at,
                    format!("sequence gap: expected record {expected}, found record {}", frame.index),
                ))
            }
            Err(fault) if !is_last => return Err(WalError::corrupt(path, at, format!("{fault} in a sealed segment"))),
            Err(fault) => {
                if let Some(valid) = later_valid_frame(bytes, pos, expected) {
                    return Err(WalError::corrupt(
                        path,
                        at,
                        format!("{fault}, yet a valid frame follows at offset {valid}"),
                    ));
                }
                warn!(file = %path.display(), offset = at, %fault,
                    "wal: cutting off a torn tail record (a write cut short by a crash)");
                break;
            }
        }
    }
    Ok((offsets, pos))
}

/// The offset of a valid frame somewhere after the bad one at `bad_at`, if there is one.
///
/// This is what separates a torn tail from damage in the middle: a crash only tears the final
/// write, so a valid record after the bad bytes proves those bytes were once a complete record.
/// Every offset is tried because the bad frame's length cannot be trusted; a record index that
/// could plausibly follow `expected` is required before the checksum is computed, which keeps the
/// search linear and makes random payload bytes very unlikely to pass for a frame.
fn later_valid_frame(bytes: &[u8], bad_at: usize, expected: u64) -> Option<usize> {
    let room = ((bytes.len() - bad_at) / FRAME_HEADER_LEN) as u64;
    (bad_at + 1..bytes.len()).find(|&at| {
        le_u64(bytes, at + 4).is_some_and(|index| index >= expected && index - expected <= room)
            && frame::decode(&bytes[at..]).is_ok()
    })
}

/// Checks that the segments cover `first..` without holes.
fn check_contiguous(segments: &[SegmentIndex], first: u64) -> Result<(), WalError> {
    if let Some(oldest) = segments.first() {
        if oldest.base > first {
            return Err(WalError::corrupt(
                &oldest.path,
                0,
                format!(
                    "records {first}..{} are missing: the log starts at {first} but its oldest \
                     segment starts at {}",
                    oldest.base, oldest.base
                ),
            ));
        }
    }
    for pair in segments.windows(2) {
        let (earlier, later) = (&pair[0], &pair[1]);
        if earlier.end_index() != later.base {
            return Err(WalError::corrupt(
                &earlier.path,
                earlier.end,
                format!(
                    "sequence gap: this segment ends before record {} but the next one ({}) \
                     starts at record {}",
                    earlier.end_index(),
                    later.path.display(),
                    later.base
                ),
            ));
        }
    }
    Ok(())
}
