//! Waiting for a condition with a deadline, never a fixed sleep.
//!
//! A cluster converges at its own pace (elections, replication, snapshot
//! install), and that pace varies a lot on a loaded 2-core CI box. Tests
//! therefore re-check an observable condition until it holds or a generous
//! deadline passes, and on failure report the last thing they observed.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// First pause between two checks; doubled up to [`POLL_PAUSE_MAX`].
const POLL_PAUSE_FIRST: Duration = Duration::from_millis(20);

/// Longest pause between two checks: keeps the reaction time short.
const POLL_PAUSE_MAX: Duration = Duration::from_millis(200);

/// Runs `check` until it returns `Ok`, or until `timeout` has passed, and
/// then panics with `what`, the elapsed time and the last `Err` observed.
///
/// `check` should describe in its `Err` what it saw (which node, which value),
/// because that text is the failure message a reader gets.
pub async fn eventually<T>(what: impl Display, timeout: Duration, check: impl AsyncFnMut() -> Result<T, String>) -> T {
    match poll_until(timeout, check).await {
        Ok(value) => value,
        Err(failure) => panic!("timed out waiting for {what}: {failure}"),
    }
}

/// Like [`eventually`], but returns the failure instead of panicking, for
/// callers that recover (respawn a node, append more entries).
pub async fn poll_until<T>(timeout: Duration, mut check: impl AsyncFnMut() -> Result<T, String>) -> Result<T, String> {
    let start = Instant::now();
    let mut pause = POLL_PAUSE_FIRST;
    let mut attempts: u32 = 0;
    loop {
        attempts += 1;
        let last = match check().await {
            Ok(value) => return Ok(value),
            Err(last) => last,
        };
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return Err(format!("still false after {elapsed:.1?} ({attempts} checks); last observation: {last}"));
        }
        tokio::time::sleep(pause.min(timeout - elapsed)).await;
        pause = (pause * 2).min(POLL_PAUSE_MAX);
    }
}
