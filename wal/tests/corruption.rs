//! Damaged files: recovery must cut off a torn tail and report everything else, naming the file
//! and offset, and must never panic or return wrong data.

mod common;

use std::fmt::{Debug, Write as _};
use std::fs::{self, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::{assert_holds, copy_dir, frame_spans, records, segment_files, small_segments};
use dsync_wal::{Wal, WalError};
use proptest::prop_oneof;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Records in the test logs: enough for several 4 KiB segments.
const RECORDS: u64 = 120;

/// Writes a multi-segment log of `RECORDS` records into `dir` and closes it.
fn write_log(dir: &Path) {
    let wal = Wal::open(dir, small_segments()).expect("open");
    for start in (0..RECORDS).step_by(10) {
        wal.append(records(start..start + 10)).expect("append");
    }
    assert!(segment_files(dir).len() >= 3, "the log spans several segments");
}

/// Overwrites bytes of `path` at `offset`.
fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    let file = OpenOptions::new().write(true).open(path).expect("open file");
    file.write_all_at(bytes, offset).expect("patch");
}

/// XORs one byte of `path`.
fn flip(path: &Path, offset: u64, mask: u8) {
    let mut byte = [0];
    fs::File::open(path).expect("open file").read_exact_at(&mut byte, offset).expect("read byte");
    patch(path, offset, &[byte[0] ^ mask]);
}

/// The (file, offset) of a `WalError::Corrupt`, or a description of the unexpected outcome.
fn corruption(result: Result<Wal, WalError>) -> Result<(PathBuf, u64, String), String> {
    match result {
        Err(WalError::Corrupt { path, offset, reason }) => Ok((path, offset, reason)),
        Err(other) => Err(format!("expected Corrupt, got {other}")),
        Ok(wal) => Err(format!("expected Corrupt, opened a log of {}..{}", wal.first_index(), wal.next_index())),
    }
}

/// Records stored in the segments before `last`.
fn records_before(dir: &Path, last: &Path) -> u64 {
    segment_files(dir).iter().take_while(|path| path.as_path() != last).map(|path| frame_spans(path).len() as u64).sum()
}

#[test]
fn a_flipped_bit_is_reported_with_file_and_offset_or_costs_only_the_tail_record() {
    let template = tempfile::tempdir().expect("tempdir");
    write_log(template.path());
    let files = segment_files(template.path());
    let sizes: Vec<u64> = files.iter().map(|path| fs::metadata(path).expect("metadata").len()).collect();
    let total: u64 = sizes.iter().sum();
    let last_frame_start =
        frame_spans(files.last().expect("a segment")).last().expect("a record in the last segment").start;

    let mut runner = TestRunner::new(Config { cases: 96, failure_persistence: None, ..Config::default() });
    // A quarter of the cases aim at the tail record, the only place where damage is repaired.
    let tail_record = total - (sizes[sizes.len() - 1] - last_frame_start)..total;
    let positions = prop_oneof![3 => 0..total, 1 => tail_record];
    let result = runner.run(&(positions, 0..8u8), |(position, bit)| {
        // Map the position over all files to a file and an offset in it.
        let (mut file, mut offset) = (0, position);
        while offset >= sizes[file] {
            offset -= sizes[file];
            file += 1;
        }
        let case = tempfile::tempdir().expect("tempdir");
        copy_dir(template.path(), case.path());
        let damaged = case.path().join(files[file].file_name().expect("name"));
        flip(&damaged, offset, 1 << bit);

        let in_tail_record = file + 1 == files.len() && offset >= last_frame_start;
        let frame_start =
            frame_spans(&files[file]).iter().find(|span| span.contains(&offset)).map_or(0, |span| span.start);
        match Wal::open(case.path(), small_segments()) {
            Ok(wal) => {
                if !in_tail_record {
                    return Err(TestCaseError::fail(format!(
                        "damage at {} offset {offset} went unnoticed",
                        damaged.display()
                    )));
                }
                // A clean prefix: exactly the records before the torn one, intact.
                assert_holds(&wal, 0, &records(0..RECORDS - 1));
                drop(wal);
                let wal = Wal::open(case.path(), small_segments()).expect("reopen");
                assert_holds(&wal, 0, &records(0..RECORDS - 1));
            }
            Err(err) => {
                let (path, reported, _) = corruption(Err(err)).map_err(TestCaseError::fail)?;
                if in_tail_record {
                    return Err(TestCaseError::fail("a torn tail record must be cut off"));
                }
                assert_eq!(path, damaged, "the error names the damaged file");
                assert_eq!(reported, frame_start, "and the damaged frame (or header 0)");
            }
        }
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

#[test]
fn cutting_the_last_file_anywhere_in_its_last_records_leaves_a_clean_prefix() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path());
    let last = segment_files(dir.path()).pop().expect("a segment");
    let spans = frame_spans(&last);
    let before = records_before(dir.path(), &last);
    let original = fs::read(&last).expect("read");
    let from = spans[spans.len().saturating_sub(3)].start;

    // Every length inside the last three frames, and inside the header (an interrupted rotation).
    for len in (0..common::HEADER_LEN).chain(from..original.len() as u64) {
        let keep = usize::try_from(len).expect("small");
        fs::write(&last, &original[..keep]).expect("cut");
        let complete = spans.iter().filter(|span| span.end <= len).count() as u64;
        let wal = Wal::open(dir.path(), small_segments()).expect("a torn tail is not an error");
        assert_holds(&wal, 0, &records(0..before + complete));
        drop(wal);
        if len < common::HEADER_LEN {
            assert!(!last.exists(), "a segment with a torn header is removed");
        }
    }
}

#[test]
fn appends_after_cutting_a_torn_tail_survive_the_next_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path());
    let last = segment_files(dir.path()).pop().expect("a segment");
    let len = fs::metadata(&last).expect("metadata").len();
    OpenOptions::new().write(true).open(&last).and_then(|file| file.set_len(len - 5)).expect("tear");

    let wal = Wal::open(dir.path(), small_segments()).expect("open");
    assert_eq!(wal.append(records(RECORDS - 1..RECORDS)).expect("append"), RECORDS - 1..RECORDS);
    drop(wal);
    assert_holds(&Wal::open(dir.path(), small_segments()).expect("reopen"), 0, &records(0..RECORDS));
}

#[test]
fn a_garbage_length_is_a_torn_tail_only_in_the_last_record() {
    let garbage = 0xFFFF_FFF0u32.to_le_bytes();

    // In the last record of the last segment: cut off.
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path());
    let last = segment_files(dir.path()).pop().expect("a segment");
    let spans = frame_spans(&last);
    patch(&last, spans[spans.len() - 1].start, &garbage);
    let wal = Wal::open(dir.path(), small_segments()).expect("open");
    assert_holds(&wal, 0, &records(0..RECORDS - 1));
    drop(wal);

    // In an earlier record of the last segment: the records after it prove it is not torn.
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path());
    let at = spans[spans.len() - 2].start;
    patch(&last_segment(dir.path()), at, &garbage);
    let (path, offset, reason) = corruption(Wal::open(dir.path(), small_segments())).expect("corrupt");
    assert_eq!((path, offset), (last_segment(dir.path()), at));
    assert!(reason.contains("valid frame follows"), "{reason}");

    // In a sealed segment: always corruption.
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path());
    let sealed = segment_files(dir.path())[0].clone();
    let at = frame_spans(&sealed).last().expect("a record").start;
    patch(&sealed, at, &garbage);
    let (path, offset, _) = corruption(Wal::open(dir.path(), small_segments())).expect("corrupt");
    assert_eq!((path, offset), (sealed, at));
}

#[test]
fn a_damaged_header_of_a_sealed_segment_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path());
    let sealed = segment_files(dir.path())[1].clone();
    flip(&sealed, 14, 0x01);
    let (path, offset, _) = corruption(Wal::open(dir.path(), small_segments())).expect("corrupt");
    assert_eq!((path, offset), (sealed, 0));
}

#[test]
fn a_missing_segment_is_a_sequence_gap() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path());
    let files = segment_files(dir.path());
    fs::remove_file(&files[1]).expect("remove");
    let (path, _, reason) = corruption(Wal::open(dir.path(), small_segments())).expect("corrupt");
    assert_eq!(path, files[0]);
    assert!(reason.contains("sequence gap"), "{reason}");
}

#[test]
fn a_missing_record_inside_a_segment_is_a_sequence_gap() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path());
    let last = last_segment(dir.path());
    let spans = frame_spans(&last);
    let mut bytes = fs::read(&last).expect("read");
    let hole = spans[1].clone();
    bytes.drain(usize::try_from(hole.start).expect("small")..usize::try_from(hole.end).expect("small"));
    fs::write(&last, bytes).expect("write");
    let (path, offset, reason) = corruption(Wal::open(dir.path(), small_segments())).expect("corrupt");
    assert_eq!((path, offset), (last, hole.start));
    assert!(reason.contains("sequence gap"), "{reason}");
}

#[test]
fn a_damaged_first_index_file_is_corruption() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path());
    Wal::open(dir.path(), small_segments()).and_then(|wal| wal.purge(5)).expect("purge");
    let first_index = dir.path().join("FIRST_INDEX");
    flip(&first_index, 13, 0x40);
    let (path, offset, _) = corruption(Wal::open(dir.path(), small_segments())).expect("corrupt");
    assert_eq!((path, offset), (first_index, 0));
}

#[test]
fn leftover_temporary_files_of_a_crash_are_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path());
    let tmp_segment = dir.path().join("00000000000000009999.wal.tmp");
    let tmp_first_index = dir.path().join("FIRST_INDEX.tmp");
    fs::write(&tmp_segment, b"DSWALSEG partial").expect("write");
    fs::write(&tmp_first_index, b"garbage").expect("write");

    let wal = Wal::open(dir.path(), small_segments()).expect("open");
    assert_holds(&wal, 0, &records(0..RECORDS));
    assert!(!tmp_segment.exists() && !tmp_first_index.exists());
}

#[test]
fn damage_after_open_is_reported_by_reads_instead_of_returning_wrong_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path());
    let wal = Wal::open(dir.path(), small_segments()).expect("open");
    let sealed = segment_files(dir.path())[0].clone();
    let victim = frame_spans(&sealed)[3].clone();
    flip(&sealed, victim.end - 1, 0x80);

    for result in [wal.read(3).map(|_| ()), wal.read_range(0..10).map(|_| ())] {
        match result {
            Err(WalError::Corrupt { path, offset, .. }) => {
                assert_eq!((path, offset), (sealed.clone(), victim.start));
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
    assert_eq!(wal.read(4).expect("other records still read"), Some(common::record(4)));
}

#[test]
fn cutting_a_torn_tail_is_logged_with_file_and_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_log(dir.path());
    let last = last_segment(dir.path());
    let len = fs::metadata(&last).expect("metadata").len();
    OpenOptions::new().write(true).open(&last).and_then(|file| file.set_len(len - 1)).expect("tear");
    let torn_at = torn_frame_start(&last);

    let warnings = Arc::new(Mutex::new(Vec::new()));
    let capture = WarningCapture(Arc::clone(&warnings));
    tracing::subscriber::with_default(capture, || {
        Wal::open(dir.path(), small_segments()).expect("open");
    });
    let warnings = warnings.lock().expect("lock");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains(&last.display().to_string()), "{}", warnings[0]);
    assert!(warnings[0].contains(&format!("offset={torn_at}")), "{}", warnings[0]);
}

/// Start of the last (torn) frame of a file cut inside it: the end of the complete frames.
fn torn_frame_start(path: &Path) -> u64 {
    let bytes = fs::read(path).expect("read");
    let mut at = common::HEADER_LEN;
    loop {
        let pos = usize::try_from(at).expect("small");
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes"));
        let end = at + common::FRAME_HEADER_LEN + u64::from(len);
        if end > bytes.len() as u64 {
            return at;
        }
        at = end;
    }
}

fn last_segment(dir: &Path) -> PathBuf {
    segment_files(dir).pop().expect("a segment")
}

/// A minimal `tracing` subscriber that keeps the fields of WARN events.
struct WarningCapture(Arc<Mutex<Vec<String>>>);

/// Renders an event's fields as `name=value` pairs.
struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        let _ = write!(self.0, "{}={} ", field.name(), value);
    }
}

impl tracing::Subscriber for WarningCapture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn event(&self, event: &tracing::Event<'_>) {
        if *event.metadata().level() == tracing::Level::WARN {
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            self.0.lock().expect("lock").push(fields.0);
        }
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}
