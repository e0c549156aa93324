//! Helpers shared by the integration tests, including a reader of the on-disk layout written from
//! the crate docs (so the tests also check that the documented format is the real one).

// Each test binary compiles this module and uses a different subset of it.
#![allow(dead_code)]

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use dsync_wal::{Wal, WalOptions};

/// Segment header size, from the crate docs.
pub const HEADER_LEN: u64 = 24;
/// Frame header size (length, index, CRC), from the crate docs.
pub const FRAME_HEADER_LEN: u64 = 16;

/// Tiny segments, so that a few dozen records span several of them.
pub fn small_segments() -> WalOptions {
    WalOptions { segment_bytes_max: 4096, record_bytes_max: 1 << 20 }
}

/// A deterministic record whose content and length (40..120 bytes) depend on `i`, filled with
/// pseudo-random bytes so that no payload looks like a frame.
pub fn record(i: u64) -> Vec<u8> {
    let len = 40 + (i * 37) % 80;
    let mut state = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// Records `range`, as `record` makes them.
pub fn records(range: Range<u64>) -> Vec<Vec<u8>> {
    range.map(record).collect()
}

/// The segment files of `dir`, oldest first.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "wal"))
        .collect();
    files.sort();
    files
}

/// Byte ranges of the frames of an intact segment file, walked by the documented layout.
pub fn frame_spans(path: &Path) -> Vec<Range<u64>> {
    let bytes = fs::read(path).expect("read segment");
    let mut spans = Vec::new();
    let mut at = HEADER_LEN;
    while at < bytes.len() as u64 {
        let pos = usize::try_from(at).expect("small file");
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes"));
        let end = at + FRAME_HEADER_LEN + u64::from(len);
        spans.push(at..end);
        at = end;
    }
    spans
}

/// Asserts that the log holds exactly `expected` records starting at `first`, through both read
/// paths.
pub fn assert_holds(wal: &Wal, first: u64, expected: &[Vec<u8>]) {
    let next = first + expected.len() as u64;
    assert_eq!(wal.first_index(), first, "first_index");
    assert_eq!(wal.next_index(), next, "next_index");
    assert_eq!(wal.read_range(0..u64::MAX).expect("read_range"), expected, "read_range");
    for (index, want) in (first..).zip(expected) {
        assert_eq!(wal.read(index).expect("read").as_ref(), Some(want), "read({index})");
    }
    assert_eq!(wal.read(first.wrapping_sub(1)).expect("read before first"), None);
    assert_eq!(wal.read(next).expect("read at next"), None);
}

/// Copies every file of `from` into the (existing) directory `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).expect("read dir") {
        let path = entry.expect("entry").path();
        fs::copy(&path, to.join(path.file_name().expect("file name"))).expect("copy");
    }
}
