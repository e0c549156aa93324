//! The read lease: how long this node may answer gets from its own lines
//! without asking anyone.
//!
//! A lease is earned by a ReadIndex round trip: at `t0` the node asks the
//! leader for its commit index (the leader confirms its leadership with a
//! quorum), then waits until it has applied that index, so every
//! invalidation committed before `t0` has already dropped its lines. It may
//! then answer locally until `t0 + duration`. A `put` whose invalidated
//! holder does not acknowledge waits `duration` (plus a margin) after its
//! commit before returning, so any lease that holder earned before the
//! commit has run out by then; a lease earned after the commit already
//! reflects it. A node cut off from the leader (partitioned, paused) cannot
//! renew, and its gets turn into misses, which need the leader.
//!
//! Only durations measured on one node's monotonic clock are compared, so
//! clocks need not agree across nodes, only tick at about the same rate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dsync_engine::{Consistency, Node};

/// This node's read lease.
pub struct ReadLease {
    /// When the lease started counting from (the process's clock origin).
    origin: Instant,
    /// Lease end, in nanoseconds after `origin`; 0 = none.
    until_nanos: AtomicU64,
    /// How long one confirmation lets the node answer locally.
    duration: Duration,
}

impl ReadLease {
    /// A lease (initially not held) lasting `duration` per confirmation.
    pub fn new(duration: Duration) -> ReadLease {
        ReadLease { origin: Instant::now(), until_nanos: AtomicU64::new(0), duration }
    }

    /// How long one confirmation lasts.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// True while gets may be answered from local lines.
    pub fn is_valid(&self) -> bool {
        self.nanos(Instant::now()) < self.until_nanos.load(Ordering::Acquire)
    }

    /// Time left on the lease (zero if not held).
    pub fn remaining(&self) -> Duration {
        let left = self.until_nanos.load(Ordering::Acquire).saturating_sub(self.nanos(Instant::now()));
        Duration::from_nanos(left)
    }

    /// Records a confirmation whose round trip began at `started`.
    pub fn confirmed(&self, started: Instant) {
        let until = self.nanos(started + self.duration);
        self.until_nanos.fetch_max(until, Ordering::AcqRel);
    }

    fn nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Confirms with the leader now; true if the lease was renewed.
    pub async fn renew(&self, node: &Node) -> bool {
        let started = Instant::now();
        let confirmed = tokio::time::timeout(self.duration, node.read_barrier(Consistency::Linearizable)).await;
        let ok = matches!(confirmed, Ok(Ok(())));
        if ok {
            self.confirmed(started);
        }
        ok
    }
}

/// Renews `lease` every `period` for as long as the process runs.
pub async fn keep_renewing(node: Arc<Node>, lease: Arc<ReadLease>, period: Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        lease.renew(&node).await;
    }
}
