//! SIGKILL in the middle of appends, rotations and purges: every acknowledged record must survive
//! with its content, every acknowledged purge must hold, and the log must stay contiguous.
//!
//! The test binary runs itself as the child process: `child_appends_until_killed` does the work
//! when `WAL_CRASH_CHILD` names the log directory, and reports each acknowledgement on stdout.

mod common;

use std::collections::BTreeMap;
use std::env;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use dsync_wal::{Wal, WalOptions};

/// Names the log directory of the child.
const CHILD_ENV: &str = "WAL_CRASH_CHILD";
/// Tells the child which round it is, so payloads of different rounds differ.
const ROUND_ENV: &str = "WAL_CRASH_ROUND";
/// Appending threads in the child.
const THREADS: u64 = 4;
/// The child purges down to this many records now and then.
const KEEP: u64 = 300;

/// 16 KiB segments: with ~250-byte records the child rotates every ~60 records, so kills also
/// land in rotations.
fn opts() -> WalOptions {
    WalOptions { segment_bytes_max: 16 << 10, record_bytes_max: 1 << 20 }
}

/// The `j`th record of append `seq` of `thread` in `round`: self-describing, so that the parent
/// can check any record it finds, acknowledged or not.
fn payload(round: u64, thread: u64, seq: u64, j: u64) -> Vec<u8> {
    let mut bytes = format!("r{round} t{thread} s{seq} j{j} ").into_bytes();
    let len = bytes.len() + 200 + usize::try_from(seq % 50).expect("small");
    let fill = b'a' + u8::try_from((round + thread + seq + j) % 26).expect("small");
    bytes.resize(len, fill);
    bytes
}

/// Recomputes the payload a record claims to be, or `None` if it is not one.
fn expected_from(record: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(record).ok()?;
    let mut fields = text.split(' ').take(4).map(|field| field.get(1..)?.parse().ok());
    let mut next = || fields.next().flatten();
    Some(payload(next()?, next()?, next()?, next()?))
}

/// Writes one line to stdout at once, so the parent never sees half an acknowledgement unless
/// the kill lands inside the write.
fn report(line: &str) {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).expect("parent reads stdout");
}

#[test]
#[ignore = "the child process of `acknowledged_records_survive_sigkill`"]
fn child_appends_until_killed() {
    let Some(dir) = env::var_os(CHILD_ENV) else {
        return;
    };
    let round: u64 = env::var(ROUND_ENV).expect("round").parse().expect("numeric round");
    let wal = Wal::open(dir, opts()).expect("child opens the log");
    thread::scope(|scope| {
        for thread in 0..THREADS {
            let wal = &wal;
            scope.spawn(move || {
                for seq in 0.. {
                    let batch = (0..1 + seq % 3).map(|j| payload(round, thread, seq, j)).collect();
                    let range = wal.append(batch).expect("append");
                    report(&format!("ACK {} {} {round} {thread} {seq}", range.start, range.end));
                    if thread == 0 && seq % 40 == 39 {
                        if let Some(upto) = wal.next_index().checked_sub(KEEP) {
                            wal.purge(upto).expect("purge");
                            report(&format!("PURGE {upto}"));
                        }
                    }
                }
            });
        }
    });
}

/// What the parent learnt from the children's acknowledgements.
#[derive(Default)]
struct Acknowledged {
    /// Record index to the payload acknowledged for it.
    records: BTreeMap<u64, Vec<u8>>,
    /// Highest acknowledged `purge(upto)`.
    purged: Option<u64>,
}

impl Acknowledged {
    /// Takes in one complete stdout line of the child; returns whether it was an append ack.
    fn take(&mut self, line: &str) -> bool {
        let fields: Vec<u64> = line.split_whitespace().skip(1).filter_map(|field| field.parse().ok()).collect();
        match (line.split_whitespace().next(), fields.as_slice()) {
            (Some("ACK"), &[start, end, round, thread, seq]) => {
                for index in start..end {
                    let record = payload(round, thread, seq, index - start);
                    let earlier = self.records.insert(index, record);
                    assert!(earlier.is_none(), "index {index} acknowledged twice");
                }
                true
            }
            (Some("PURGE"), &[upto]) => {
                self.purged = self.purged.max(Some(upto));
                false
            }
            _ => false,
        }
    }

    /// Reopens the log and checks it against everything acknowledged so far.
    fn verify(&self, dir: &Path) {
        let wal = Wal::open(dir, opts()).expect("reopen after SIGKILL");
        let (first, next) = (wal.first_index(), wal.next_index());
        if let Some(upto) = self.purged {
            assert!(first > upto, "acknowledged purge({upto}) undone: first {first}");
        }
        let log = wal.read_range(first..next).expect("read the whole log");
        assert_eq!(log.len() as u64, next - first, "the log is contiguous");
        for (index, record) in (first..).zip(&log) {
            assert_eq!(expected_from(record).as_ref(), Some(record), "record {index} is one the child wrote, intact");
        }
        for (&index, record) in self.records.range(first..) {
            assert!(index < next, "acknowledged record {index} lost (next {next})");
            let at = usize::try_from(index - first).expect("small");
            assert_eq!(&log[at], record, "acknowledged record {index} changed");
        }
    }
}

#[test]
fn acknowledged_records_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = env::current_exe().expect("test binary");
    let mut acknowledged = Acknowledged::default();
    for round in 0..4u64 {
        let mut child = Command::new(&exe)
            .args(["child_appends_until_killed", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .env(ROUND_ENV, round.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn child");
        let pid = i32::try_from(child.id()).expect("pid");
        let kill = move || {
            // SAFETY: kill(2) has no memory-safety requirements.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        };
        // A hung child must not hang the test suite.
        let (finished, watchdog_rx) = mpsc::channel::<()>();
        let watchdog = thread::spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = watchdog_rx.recv_timeout(Duration::from_secs(60)) {
                kill();
            }
        });

        // Kill at a different point each round, as soon as enough acks have been read.
        let kill_after = 150 + round * 70;
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut acks = 0;
        let mut line = String::new();
        let mut killed = false;
        loop {
            line.clear();
            if stdout.read_line(&mut line).expect("read child stdout") == 0 {
                break;
            }
            // Only complete lines count: a line cut by the kill was never fully reported.
            if line.ends_with('\n') && acknowledged.take(&line) {
                acks += 1;
            }
            if acks == kill_after && !killed {
                kill();
                killed = true;
            }
        }
        let status = child.wait().expect("wait for child");
        drop(finished);
        watchdog.join().expect("watchdog");
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "round {round}: the child ended by itself after {acks} acks ({status})"
        );
        assert!(acks >= kill_after, "round {round}: only {acks} acks");

        acknowledged.verify(dir.path());
    }
    assert!(acknowledged.purged.is_some(), "purges were exercised");
    assert!(common::segment_files(dir.path()).len() > 1, "rotations were exercised");
}
