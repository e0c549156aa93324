//! One segment file: its name, its in-memory record index, and reading records back from it.
//!
//! A segment is a [header](crate::header) carrying the segment's base index followed by the
//! [frames](crate::frame) of records `base, base + 1, ...`, back to back.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{IoContext, WalError};
use crate::frame;

/// Suffix of segment file names.
const SEGMENT_SUFFIX: &str = ".wal";

/// Digits in a segment file name: enough for any u64, zero-padded so that sorting names sorts
/// segments by base index.
const NAME_DIGITS: usize = 20;

/// The file name of the segment whose first record is `base`.
pub(crate) fn file_name(base: u64) -> String {
    format!("{base:0NAME_DIGITS$}{SEGMENT_SUFFIX}")
}

/// The base index encoded in a segment file name, or `None` if `name` is not a segment's.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Where the records of one segment are, so a read costs one `pread` and no scan.
#[derive(Debug)]
pub(crate) struct SegmentIndex {
    /// Index of the segment's first record (also in its header and file name).
    pub(crate) base: u64,
    /// The segment file, for error messages and deletion.
    pub(crate) path: PathBuf,
    /// Open handle shared with the writer; readers use positional reads, so no seek state is
    /// shared and readers never wait for each other.
    pub(crate) file: Arc<File>,
    /// Byte offset of each record's frame: record `base + i` starts at `offsets[i]`.
    pub(crate) offsets: Vec<u64>,
    /// Byte offset just past the last durable frame (the header length if there is none).
    pub(crate) end: u64,
}

impl SegmentIndex {
    /// Index one past the segment's last record.
    pub(crate) fn end_index(&self) -> u64 {
        self.base + self.offsets.len() as u64
    }

    /// Position of record `index` in `offsets`, if the segment holds it.
    fn slot(&self, index: u64) -> Option<usize> {
        let slot = usize::try_from(index.checked_sub(self.base)?).ok()?;
        (slot < self.offsets.len()).then_some(slot)
    }

    /// Byte offset where record `index` starts, or where it would start if `index` is one past
    /// the last record.
    pub(crate) fn offset_of(&self, index: u64) -> Option<u64> {
        match self.slot(index) {
            Some(slot) => Some(self.offsets[slot]),
            None => (index == self.end_index()).then_some(self.end),
        }
    }

    /// Appends the payloads of `range` (which must lie inside this segment) to `out`.
    ///
    /// The whole span is fetched with one positional read, then every frame's checksum and index
    /// are verified again: a bit that rotted after recovery is reported as corruption instead of
    /// being handed to Raft as data.
    pub(crate) fn read_records(&self, range: Range<u64>, out: &mut Vec<Vec<u8>>) -> Result<(), WalError> {
        let (Some(start), Some(stop)) = (self.offset_of(range.start), self.offset_of(range.end)) else {
            return Err(WalError::corrupt(
                &self.path,
                self.end,
                format!("records {range:?} are not in this segment's index"),
            ));
        };
        let span = usize::try_from(stop - start)
            .map_err(|_| WalError::corrupt(&self.path, start, "span too large for this platform"))?;
        let mut bytes = vec![0; span];
        self.file.read_exact_at(&mut bytes, start).at(&self.path)?;
        let mut pos = 0;
        for expected in range {
            let at = start + pos as u64;
            let frame =
                frame::decode(&bytes[pos..]).map_err(|fault| WalError::corrupt(&self.path, at, fault.to_string()))?;
            if frame.index != expected {
                return Err(WalError::corrupt(
                    &self.path,
                    at,
                    format!("expected record {expected}, found {}", frame.index),
                ));
            }
            out.push(frame.payload.to_vec());
            pos += frame.len;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_like_base_indices_and_parse_back() {
        let bases = [0, 9, 10, 99_999, u64::MAX];
        let names: Vec<String> = bases.iter().map(|&b| file_name(b)).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        for (name, base) in names.iter().zip(bases) {
            assert_eq!(parse_file_name(name), Some(base));
        }
    }

    #[test]
    fn foreign_file_names_are_not_segments() {
        for name in ["LOCK", "FIRST_INDEX", "1.wal", "0000000000000000000a.wal"] {
            assert_eq!(parse_file_name(name), None, "{name}");
        }
        let tmp = format!("{}{}", file_name(3), crate::durable::TMP_SUFFIX);
        assert_eq!(parse_file_name(&tmp), None);
    }
}
