//! Appending and reading back: the basic contract the Raft storage relies on.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;

use common::{assert_holds, record, records, small_segments};
use dsync_wal::{Wal, WalError, WalOptions};

#[test]
fn a_fresh_log_is_empty_at_index_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path().join("created/on/open"), WalOptions::default()).expect("open");
    assert_holds(&wal, 0, &[]);
    assert_eq!(wal.read_range(0..10).expect("read_range"), Vec::<Vec<u8>>::new());
}

#[test]
fn appended_records_read_back_before_and_after_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), small_segments()).expect("open");
    assert_eq!(wal.append(records(0..1)).expect("append"), 0..1);
    assert_eq!(wal.append(records(1..40)).expect("append"), 1..40);
    assert_eq!(wal.append(records(40..100)).expect("append"), 40..100);
    assert_holds(&wal, 0, &records(0..100));
    // Ranges are clipped to what exists and may span segment boundaries.
    assert_eq!(wal.read_range(95..200).expect("read_range"), records(95..100));
    assert_eq!(wal.read_range(30..70).expect("read_range"), records(30..70));
    assert!(wal.read_range(100..200).expect("read_range").is_empty());
    assert!(common::segment_files(dir.path()).len() >= 3, "4 KiB segments rotate");
    drop(wal);

    let wal = Wal::open(dir.path(), small_segments()).expect("reopen");
    assert_holds(&wal, 0, &records(0..100));
    assert_eq!(wal.append(records(100..101)).expect("append"), 100..101);
    drop(wal);
    let wal = Wal::open(dir.path(), small_segments()).expect("reopen");
    assert_holds(&wal, 0, &records(0..101));
}

#[test]
fn an_empty_append_assigns_no_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), WalOptions::default()).expect("open");
    wal.append(records(0..3)).expect("append");
    assert_eq!(wal.append(Vec::new()).expect("empty append"), 3..3);
    assert_eq!(wal.append(vec![Vec::new()]).expect("empty record"), 3..4);
    assert_eq!(wal.read(3).expect("read"), Some(Vec::new()));
}

#[test]
fn an_oversized_record_rejects_its_whole_request_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = WalOptions { record_bytes_max: 100, ..WalOptions::default() };
    let wal = Wal::open(dir.path(), opts).expect("open");
    let err = wal.append(vec![vec![1; 10], vec![2; 101]]).expect_err("too large");
    assert!(matches!(err, WalError::RecordTooLarge { len: 101, max: 100 }), "{err}");
    assert_eq!(wal.next_index(), 0, "no part of the request was written");
    assert_eq!(wal.append(vec![vec![3; 100]]).expect("append"), 0..1);
}

#[test]
fn concurrent_appenders_get_disjoint_consecutive_indices_and_their_data_back() {
    const THREADS: u64 = 8;
    const APPENDS: u64 = 25;
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), small_segments()).expect("open");
    let start = Arc::new(Barrier::new(usize::try_from(THREADS).expect("small") + 1));

    // A reader running alongside checks that whatever is published reads back intact.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (wal, stop) = (wal.clone(), Arc::clone(&stop));
        thread::spawn(move || {
            let mut checks = 0;
            while !stop.load(Ordering::Relaxed) {
                if let Some(last) = wal.next_index().checked_sub(1) {
                    assert!(wal.read(last).expect("read published record").is_some());
                    checks += 1;
                }
                thread::yield_now();
            }
            checks
        })
    };
    let appenders: Vec<_> = (0..THREADS)
        .map(|t| {
            let (wal, start) = (wal.clone(), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                (0..APPENDS)
                    .map(|i| {
                        // Each request: 1..=3 records, tagged so their owner is recognisable.
                        let batch: Vec<Vec<u8>> =
                            (0..1 + (t + i) % 3).map(|j| format!("t{t}-a{i}-r{j}").into_bytes()).collect();
                        let range = wal.append(batch.clone()).expect("append");
                        assert_eq!(range.end - range.start, batch.len() as u64);
                        (range, batch)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    start.wait();
    let mut all: Vec<_> = appenders.into_iter().flat_map(|handle| handle.join().expect("appender")).collect();
    stop.store(true, Ordering::Relaxed);
    assert!(reader.join().expect("reader") > 0);
    let total: u64 = all.iter().map(|(range, _)| range.end - range.start).sum();

    all.sort_by_key(|(range, _)| range.start);
    let mut expected_start = 0;
    for (range, batch) in &all {
        assert_eq!(range.start, expected_start, "ranges are disjoint and gap-free");
        assert_eq!(&wal.read_range(range.clone()).expect("read"), batch);
        expected_start = range.end;
    }
    assert_eq!(expected_start, total);
    drop(wal);

    let wal = Wal::open(dir.path(), small_segments()).expect("reopen");
    for (range, batch) in &all {
        assert_eq!(&wal.read_range(range.clone()).expect("read"), batch);
    }
}

#[test]
fn append_with_completes_in_submission_order_after_the_records_are_readable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), WalOptions::default()).expect("open");
    let (done_tx, done_rx) = mpsc::channel();
    for i in 0..50u64 {
        let (done_tx, reader) = (done_tx.clone(), wal.clone());
        wal.append_with(
            records(i * 2..i * 2 + 2),
            Box::new(move |result| {
                let range = result.expect("append");
                // Acknowledged records are already visible to readers.
                let visible = reader.read_range(range.clone()).expect("read");
                done_tx.send((i, range, visible)).expect("send");
            }),
        );
    }
    drop(done_tx);
    let completions: Vec<_> = done_rx.iter().collect();
    assert_eq!(completions.len(), 50);
    for (position, (i, range, visible)) in completions.into_iter().enumerate() {
        assert_eq!(i, position as u64, "callbacks run in submission order");
        assert_eq!(range, i * 2..i * 2 + 2);
        assert_eq!(visible, records(range));
    }
}

#[test]
fn a_truncate_runs_after_the_appends_submitted_before_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), WalOptions::default()).expect("open");
    let (done_tx, done_rx) = mpsc::channel();
    wal.append_with(records(0..5), Box::new(move |result| done_tx.send(result).expect("send")));
    wal.truncate(2).expect("truncate");
    assert_eq!(done_rx.recv().expect("completion").expect("append"), 0..5);
    assert_holds(&wal, 0, &records(0..2));
}

#[test]
fn a_log_directory_cannot_be_opened_twice_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), WalOptions::default()).expect("open");
    let err = Wal::open(dir.path(), WalOptions::default()).err().expect("second open fails");
    assert!(matches!(err, WalError::Io { .. }), "{err}");
    assert!(err.to_string().contains("in use by another Wal"), "{err}");
    wal.append(vec![record(0)]).expect("first handle still works");
    drop(wal);
    // Dropping the last handle stops the writer and releases the directory.
    let wal = Wal::open(dir.path(), WalOptions::default()).expect("reopen");
    assert_holds(&wal, 0, &records(0..1));
}

#[test]
fn a_handle_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Wal>();
}

#[test]
fn a_panicking_completion_callback_does_not_stop_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal = Wal::open(dir.path(), WalOptions::default()).expect("open");
    wal.append_with(records(0..1), Box::new(|_| panic!("callback bug (expected by this test)")));
    assert_eq!(wal.append(records(1..2)).expect("append"), 1..2);
    assert_holds(&wal, 0, &records(0..2));
}
