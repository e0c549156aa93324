//! Rule (API.md, "Distributed locks": exclusive mode, fencing tokens): while
//! the leader is SIGKILLed and later restarted, an exclusive lock still
//! admits one holder at a time, and its fencing tokens only grow, so a
//! fenced store behind it loses no update.
//!
//! Six client tasks (owners `client-0..5`) loop: acquire `counter`
//! exclusively (long lease, wait a few seconds), then do a read-modify-write
//! of an in-test store that refuses writes carrying a token older than the
//! newest it has seen, while an in-test flag checks that nobody else is
//! inside, then release. A request that fails with 503 or a transport error
//! is retried through the next node: a retried acquire by the same owner is
//! idempotent, and a release answers whether it released. A client stops
//! only between cycles, so none is left holding the lock unknowingly.
//!
//! Asserted: no two critical sections overlapped; every grant's token is
//! greater than every earlier one; every acknowledged grant's increment
//! landed exactly once (the store's value equals the number of completed
//! critical sections, none refused); cycles completed before and after the
//! kill; afterwards the lock is free.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::client::{Acquire, Grant};
use crate::common::{eventually, Api, Cluster, ClusterOptions};

const CLIENTS: usize = 6;

/// The one lock every client takes.
const RESOURCE: &str = "counter";

/// Lease far beyond the run: only releases move the lock, never expiry.
const LEASE_TTL_MS: u64 = 60_000;

/// Queue wait of each acquire: long enough for six clients to take turns.
const WAIT_MS: u64 = 3_000;

/// Client-side bound of one attempt beyond the wait it asked for.
const ATTEMPT_SLACK: Duration = Duration::from_secs(4);

/// Bound of one release attempt.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// Pause before retrying through the next node.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// A client retries one call this long (an election is a few seconds).
const ANSWER_GIVE_UP: Duration = Duration::from_secs(30);

/// Time spent inside each critical section between read and write: widens
/// the window in which an overlapping holder would be caught.
const SECTION_WORK: Duration = Duration::from_millis(3);

/// Length of the run (clients stop starting cycles after it) ...
const RUN_FOR: Duration = Duration::from_secs(10);

/// ... or after this many completed critical sections.
const SECTIONS_MAX: u64 = 300;

/// Completed cycles before the kill, and again after it.
const SECTIONS_PER_PHASE: u64 = 15;

/// Bound on reaching each phase's cycles.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(25);

/// The fenced store: like a real storage system behind a lock, it refuses a
/// write whose token is older than the newest it has seen.
#[derive(Default)]
struct Storage {
    value: u64,
    newest_token: u64,
    refused: u64,
}

impl Storage {
    fn write(&mut self, token: u64, value: u64) -> Result<(), String> {
        if token < self.newest_token {
            self.refused += 1;
            return Err(format!("write with token {token} refused: the store has seen token {}", self.newest_token));
        }
        self.newest_token = token;
        self.value = value;
        Ok(())
    }
}

/// What the clients share with each other and with the test.
#[derive(Default)]
struct Run {
    /// Set while some client is inside its critical section.
    inside: AtomicBool,
    storage: Mutex<Storage>,
    /// Highest fencing token granted so far.
    last_token: AtomicU64,
    /// Critical sections completed (increment written).
    sections: AtomicU64,
    /// Acquire or release attempts retried (503 or transport error).
    retries: AtomicU64,
    /// Acquires that answered 408 (the client simply tries again).
    timeouts: AtomicU64,
    /// Set by the test to end the run, or by any violation.
    stop: AtomicBool,
    violations: Mutex<Vec<String>>,
}

impl Run {
    fn violation(&self, what: String) {
        eprintln!("t30_locks_failover: VIOLATION: {what}");
        self.violations.lock().expect("violations lock").push(what);
        self.stop.store(true, Ordering::SeqCst);
    }

    fn sections(&self) -> u64 {
        self.sections.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn exclusive_lock_stays_exclusive_and_fenced_across_leader_failover() {
    let mut cluster = Cluster::start("t30_locks_failover", ClusterOptions::default()).await;
    let leader = cluster.wait_for_leader().await;
    let run = Arc::new(Run::default());
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS).map(|no| tokio::spawn(client(cluster.api().clone(), run.clone(), no))).collect();

    wait_sections(&run, SECTIONS_PER_PHASE, "before the kill").await;
    let at_kill = run.sections();
    cluster.kill(leader);
    let killed_at = Instant::now();
    eprintln!("t30_locks_failover: killed the leader node{leader} after {at_kill} critical sections");
    wait_sections(&run, at_kill + SECTIONS_PER_PHASE, "after the leader was killed").await;
    eprintln!(
        "t30_locks_failover: {SECTIONS_PER_PHASE} more critical sections {:.3?} after the kill",
        killed_at.elapsed()
    );
    cluster.restart(leader).await;
    eprintln!("t30_locks_failover: node{leader} restarted at {} critical sections", run.sections());

    // Run on (the old leader back as a member) until the run's bound.
    while started.elapsed() < RUN_FOR && run.sections() < SECTIONS_MAX && !run.stop.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    run.stop.store(true, Ordering::SeqCst);
    for handle in clients {
        // Each client finishes its cycle: at most one acquire and one release.
        match tokio::time::timeout(ANSWER_GIVE_UP * 2, handle).await {
            Ok(joined) => joined.expect("a client task panicked"),
            Err(_) => panic!("a client did not finish its last cycle within {:?}", ANSWER_GIVE_UP * 2),
        }
    }

    let sections = run.sections();
    let (value, refused) = {
        let storage = run.storage.lock().expect("storage lock");
        (storage.value, storage.refused)
    };
    eprintln!(
        "t30_locks_failover: {sections} critical sections in {:.1?}, {} retried requests, {} waits timed out",
        started.elapsed(),
        run.retries.load(Ordering::SeqCst),
        run.timeouts.load(Ordering::SeqCst)
    );
    let violations = run.violations.lock().expect("violations lock").clone();
    assert!(violations.is_empty(), "{} violations:\n  {}", violations.len(), violations.join("\n  "));
    assert_eq!(refused, 0, "the fenced store refused {refused} writes carrying an old token");
    assert_eq!(value, sections, "store value vs. completed critical sections: an increment was lost or doubled");

    // Every client ended with a release: nobody holds or waits, by a
    // linearizable read, and then in every node's own state (the restarted
    // old leader included).
    let running = cluster.running();
    let api = cluster.api().clone();
    eventually("t30_locks_failover: GET /locks?resource=counter after the run", Duration::from_secs(20), async || {
        let mut last = String::new();
        for &id in &running {
            match api.lock_state(id, RESOURCE).await {
                Ok(state) if state.is_free() => return Ok(()),
                Ok(state) => {
                    return Err(format!("node{id}: the lock is not free after every client released it: {}", state.raw))
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    })
    .await;
    for &id in &running {
        let what = format!("t30_locks_failover: node{id}'s own state to show {RESOURCE} free");
        eventually(what, Duration::from_secs(20), async || {
            let state = api.lock_state_at(id, RESOURCE, Some("local")).await?;
            if state.is_free() {
                Ok(())
            } else {
                Err(state.raw.to_string())
            }
        })
        .await;
    }
}

/// Waits until `target` critical sections completed (or a violation ended
/// the run: the test's assertions then report it).
async fn wait_sections(run: &Run, target: u64, phase: &str) {
    let what = format!("t30_locks_failover: {target} critical sections {phase}");
    eventually(what, PROGRESS_TIMEOUT, async || {
        let done = run.sections();
        if done >= target || run.stop.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(format!("{done} completed"))
        }
    })
    .await;
}

/// What an acquire came to.
enum Acquired {
    Granted(Grant),
    /// 408: the wait ran out; try again.
    NotNow,
    /// A violation was recorded; the client stops.
    GaveUp,
}

/// One client: cycles until the run stops.
async fn client(api: Api, run: Arc<Run>, no: usize) {
    let owner = format!("client-{no}");
    // Clients start on different nodes and move on after every request.
    let mut next_node = no;
    while !run.stop.load(Ordering::SeqCst) && run.sections() < SECTIONS_MAX {
        let request = Acquire::exclusive(RESOURCE, &owner).ttl_ms(LEASE_TTL_MS).wait_ms(WAIT_MS);
        let grant = match acquire(&api, &run, &request, &mut next_node).await {
            Acquired::Granted(grant) => grant,
            Acquired::NotNow => continue,
            Acquired::GaveUp => return,
        };
        critical_section(&run, &owner, &grant).await;
        if !release(&api, &run, &owner, &mut next_node).await {
            return;
        }
    }
}

/// Acquires until a definitive answer, retrying 503s and transport errors
/// through the next node (the same owner's retry is idempotent).
async fn acquire(api: &Api, run: &Run, request: &Acquire, next_node: &mut usize) -> Acquired {
    let started = Instant::now();
    let mut last = String::from("no attempt");
    while started.elapsed() < ANSWER_GIVE_UP {
        let id = node(next_node);
        let timeout = Duration::from_millis(request.wait_ms) + ATTEMPT_SLACK;
        match api.post_with_timeout(id, "/locks/acquire", &request.body(), timeout).await {
            Ok(reply) if reply.status == 200 => {
                return match Grant::parse(&reply, request) {
                    Ok(grant) => Acquired::Granted(grant),
                    Err(e) => {
                        run.violation(format!("via node{id}: {e}"));
                        Acquired::GaveUp
                    }
                };
            }
            Ok(reply) if reply.status == 408 && reply.error_code() == Some("timeout") => {
                run.timeouts.fetch_add(1, Ordering::SeqCst);
                return Acquired::NotNow;
            }
            Ok(reply) if reply.status == 503 => last = format!("node{id}: {reply}"),
            Ok(reply) => {
                run.violation(format!("{request} via node{id}: unexpected answer {reply}"));
                return Acquired::GaveUp;
            }
            Err(transport) => last = transport,
        }
        run.retries.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(RETRY_PAUSE).await;
    }
    run.violation(format!("{request}: no definitive answer within {ANSWER_GIVE_UP:?}; last: {last}"));
    Acquired::GaveUp
}

/// The fenced read-modify-write, checked for overlap and token order.
async fn critical_section(run: &Run, owner: &str, grant: &Grant) {
    let token = grant.fencing_token;
    if run.inside.swap(true, Ordering::SeqCst) {
        run.violation(format!("{owner} entered the critical section (token {token}) while another client was inside"));
    }
    let earlier = run.last_token.fetch_max(token, Ordering::SeqCst);
    if token <= earlier {
        run.violation(format!("{owner} was granted token {token}, not above the earlier grant's {earlier}"));
    }
    let read = run.storage.lock().expect("storage lock").value;
    tokio::time::sleep(SECTION_WORK).await;
    let written = run.storage.lock().expect("storage lock").write(token, read + 1);
    match written {
        Ok(()) => {
            run.sections.fetch_add(1, Ordering::SeqCst);
        }
        Err(e) => run.violation(format!("{owner}: {e}")),
    }
    run.inside.store(false, Ordering::SeqCst);
}

/// Releases until a definitive answer; false when the client must stop.
/// `released: false` is acceptable only after an attempt whose outcome is
/// unknown (it may have released already).
async fn release(api: &Api, run: &Run, owner: &str, next_node: &mut usize) -> bool {
    let started = Instant::now();
    let body = json!({"resource": RESOURCE, "owner": owner});
    let mut last = String::from("no attempt");
    let mut uncertain = false;
    while started.elapsed() < ANSWER_GIVE_UP {
        let id = node(next_node);
        match api.post_with_timeout(id, "/locks/release", &body, RELEASE_TIMEOUT).await {
            Ok(reply) if reply.status == 200 && reply.body["released"] == json!(true) => return true,
            Ok(reply) if reply.status == 200 && reply.body["released"] == json!(false) && uncertain => return true,
            Ok(reply) if reply.status == 503 => last = format!("node{id}: {reply}"),
            Ok(reply) => {
                run.violation(format!("{owner} releasing the lock it holds via node{id}: {reply}"));
                return false;
            }
            Err(transport) => last = transport,
        }
        uncertain = true;
        run.retries.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(RETRY_PAUSE).await;
    }
    run.violation(format!("{owner}: release got no definitive answer within {ANSWER_GIVE_UP:?}; last: {last}"));
    false
}

/// The next node to send to (1..=3, round robin).
fn node(next_node: &mut usize) -> u64 {
    let id = 1 + (*next_node % 3) as u64;
    *next_node += 1;
    id
}
