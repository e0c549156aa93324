//! Truncate (Raft log conflict) and purge (after a snapshot) across segment boundaries, each
//! checked again after a reopen: both must be durable and exact.

mod common;

use std::fs;
use std::path::Path;

use common::{assert_holds, copy_dir, record, records, segment_files, small_segments};
use dsync_wal::Wal;

/// A log of records `0..n` in 4 KiB segments.
fn log_of(dir: &Path, n: u64) -> Wal {
    let wal = Wal::open(dir, small_segments()).expect("open");
    for start in (0..n).step_by(25) {
        wal.append(records(start..n.min(start + 25))).expect("append");
    }
    wal
}

fn reopen(dir: &Path) -> Wal {
    Wal::open(dir, small_segments()).expect("reopen")
}

/// A record that differs from `record(i)`, to tell rewritten indices from old ones.
fn rewritten(i: u64) -> Vec<u8> {
    format!("rewritten {i}").into_bytes()
}

#[test]
fn truncate_across_segments_removes_the_suffix_durably_and_appends_continue() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = log_of(dir.path(), 200);
    let segments_before = segment_files(dir.path()).len();
    assert!(segments_before >= 5);

    wal.truncate(90).expect("truncate");
    assert_holds(&wal, 0, &records(0..90));
    assert!(segment_files(dir.path()).len() < segments_before, "later segments deleted");
    drop(wal);

    let wal = reopen(dir.path());
    assert_holds(&wal, 0, &records(0..90));
    // The conflicting suffix is replaced by the new leader's entries.
    let new: Vec<_> = (90..150).map(rewritten).collect();
    assert_eq!(wal.append(new.clone()).expect("append"), 90..150);
    drop(wal);

    let wal = reopen(dir.path());
    let mut expected = records(0..90);
    expected.extend(new);
    assert_holds(&wal, 0, &expected);
}

#[test]
fn truncating_at_a_segment_base_or_past_the_end_keeps_everything_before_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = log_of(dir.path(), 120);
    wal.truncate(500).expect("truncate past the end is a no-op");
    assert_holds(&wal, 0, &records(0..120));

    let second_base = base_of(&segment_files(dir.path())[1]);
    wal.truncate(second_base).expect("truncate");
    assert_holds(&wal, 0, &records(0..second_base));
    drop(wal);
    let wal = reopen(dir.path());
    assert_holds(&wal, 0, &records(0..second_base));
    wal.append(vec![rewritten(second_base)]).expect("append");
    drop(wal);
    let wal = reopen(dir.path());
    let mut expected = records(0..second_base);
    expected.push(rewritten(second_base));
    assert_holds(&wal, 0, &expected);
}

#[test]
fn purge_across_segments_is_exact_after_reopen_and_frees_whole_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = log_of(dir.path(), 200);
    let segments_before = segment_files(dir.path()).len();

    wal.purge(70).expect("purge");
    assert_holds(&wal, 71, &records(71..200));
    assert!(segment_files(dir.path()).len() < segments_before, "old segments deleted");
    drop(wal);

    let wal = reopen(dir.path());
    assert_holds(&wal, 71, &records(71..200));
    wal.purge(30).expect("purging an already purged prefix is a no-op");
    assert_holds(&wal, 71, &records(71..200));
    wal.append(records(200..210)).expect("append");
    drop(wal);

    let wal = reopen(dir.path());
    assert_holds(&wal, 71, &records(71..210));
}

#[test]
fn purge_past_the_end_empties_the_log_and_appends_continue_after_the_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = log_of(dir.path(), 100);
    wal.purge(1_000).expect("purge");
    assert_holds(&wal, 1_001, &[]);
    assert!(segment_files(dir.path()).is_empty());
    drop(wal);

    let wal = reopen(dir.path());
    assert_holds(&wal, 1_001, &[]);
    assert_eq!(wal.append(records(1_001..1_051)).expect("append"), 1_001..1_051);
    drop(wal);

    let wal = reopen(dir.path());
    assert_holds(&wal, 1_001, &records(1_001..1_051));
}

#[test]
fn purging_exactly_the_last_record_empties_the_log_at_the_next_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = log_of(dir.path(), 100);
    wal.purge(99).expect("purge");
    assert_holds(&wal, 100, &[]);
    drop(wal);
    let wal = reopen(dir.path());
    assert_holds(&wal, 100, &[]);
    assert_eq!(wal.append(records(100..101)).expect("append"), 100..101);
}

#[test]
fn purging_an_empty_log_moves_its_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = reopen(dir.path());
    wal.purge(9).expect("purge");
    assert_holds(&wal, 10, &[]);
    drop(wal);
    assert_holds(&reopen(dir.path()), 10, &[]);
}

#[test]
fn truncating_at_the_first_index_empties_the_log_but_keeps_its_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = log_of(dir.path(), 100);
    wal.purge(49).expect("purge");
    wal.truncate(50).expect("truncate");
    assert_holds(&wal, 50, &[]);
    drop(wal);
    let wal = reopen(dir.path());
    assert_holds(&wal, 50, &[]);
    wal.append(vec![rewritten(50)]).expect("append");
    drop(wal);
    assert_holds(&reopen(dir.path()), 50, &[rewritten(50)]);
}

#[test]
fn truncating_below_the_first_index_restarts_the_empty_log_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = log_of(dir.path(), 100);
    wal.purge(59).expect("purge");
    wal.truncate(20).expect("truncate");
    assert_holds(&wal, 20, &[]);
    drop(wal);
    let wal = reopen(dir.path());
    assert_holds(&wal, 20, &[]);
    wal.append(vec![rewritten(20)]).expect("append");
    drop(wal);
    assert_holds(&reopen(dir.path()), 20, &[rewritten(20)]);
}

#[test]
fn a_purge_interrupted_before_deleting_segments_is_finished_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(log_of(dir.path(), 200));
    let before = tempfile::tempdir().expect("tempdir");
    copy_dir(dir.path(), before.path());

    let wal = reopen(dir.path());
    wal.purge(120).expect("purge");
    drop(wal);
    let after_purge = segment_files(dir.path()).len();
    // Put the deleted segments back: the state of a crash right after the first-index file was
    // written.
    restore_segments(before.path(), dir.path());

    let wal = reopen(dir.path());
    assert_holds(&wal, 121, &records(121..200));
    assert_eq!(segment_files(dir.path()).len(), after_purge, "leftovers deleted");
}

#[test]
fn a_purge_past_the_end_interrupted_before_deleting_segments_is_finished_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(log_of(dir.path(), 100));
    let before = tempfile::tempdir().expect("tempdir");
    copy_dir(dir.path(), before.path());

    let wal = reopen(dir.path());
    wal.purge(500).expect("purge past the end");
    drop(wal);
    restore_segments(before.path(), dir.path());

    let wal = reopen(dir.path());
    assert_holds(&wal, 501, &[]);
    assert!(segment_files(dir.path()).is_empty(), "leftovers deleted");
    assert_eq!(wal.append(vec![record(501)]).expect("append"), 501..502);
}

/// Copies back the segment files of `saved` that are missing from `dir`.
fn restore_segments(saved: &Path, dir: &Path) {
    for segment in segment_files(saved) {
        let restored = dir.join(segment.file_name().expect("name"));
        if !restored.exists() {
            fs::copy(&segment, restored).expect("restore");
        }
    }
}

/// The base index in a segment file's name.
fn base_of(path: &Path) -> u64 {
    path.file_stem().and_then(|stem| stem.to_str()).and_then(|stem| stem.parse().ok()).expect("segment name")
}
