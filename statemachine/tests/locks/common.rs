//! A scripted replica: applies lock commands through `State::apply` (so
//! `expire` runs first, as in production) at consecutive log indices, and
//! builds the expected outputs the tests compare whole.

use dsync_statemachine::lock::{AcquireOutcome, AcquireRequest, Grant, LockMode, LockTable};
use dsync_statemachine::{Command, Event, MemStore, Output, Request, Response, State};

/// Short names for the two modes: scripts read like lock tables.
pub const S: LockMode = LockMode::Shared;
/// See [`S`].
pub const X: LockMode = LockMode::Exclusive;

/// One replica and the index of the last entry it applied.
#[derive(Default)]
pub struct Replica {
    /// The replicated state; the lock table is `state.locks`.
    pub state: State,
    /// Log index of the last applied entry (the next one gets `index + 1`).
    pub index: u64,
    /// Queue records (none here: lock commands never touch the store).
    pub store: MemStore,
}

impl Replica {
    /// Applies `command` at the next index, stamped `time_ms`, and checks
    /// the table's invariants afterwards.
    pub fn apply(&mut self, time_ms: u64, command: Command) -> Output {
        self.index += 1;
        let output = self.state.apply(&mut self.store, self.index, &Request { time_ms, command });
        assert_eq!(self.state.locks.check_invariants(), Ok(()));
        output
    }

    /// `owner` asks for `resource` in `mode`.
    pub fn acquire(
        &mut self,
        time_ms: u64,
        resource: &str,
        owner: &str,
        mode: LockMode,
        ttl_ms: u64,
        wait_ms: u64,
    ) -> Output {
        let request = AcquireRequest { resource: resource.into(), owner: owner.into(), mode, ttl_ms, wait_ms };
        self.apply(time_ms, Command::LockAcquire(request))
    }

    /// `owner` releases `resource`.
    pub fn release(&mut self, time_ms: u64, resource: &str, owner: &str) -> Output {
        self.apply(time_ms, Command::LockRelease { resource: resource.into(), owner: owner.into() })
    }

    /// `owner` renews its leases.
    pub fn renew(&mut self, time_ms: u64, owner: &str, ttl_ms: u64) -> Output {
        self.apply(time_ms, Command::LockRenew { owner: owner.into(), ttl_ms })
    }

    /// A tick: only time passes.
    pub fn tick(&mut self, time_ms: u64) -> Output {
        self.apply(time_ms, Command::Tick)
    }

    /// The lock table.
    pub fn locks(&self) -> &LockTable {
        &self.state.locks
    }

    /// `resource`'s holders as (owner, mode, token, expiry), in grant order.
    pub fn holders(&self, resource: &str) -> Vec<(String, LockMode, u64, u64)> {
        let view = self.locks().view(resource);
        let holders = view.map(|v| v.holders).unwrap_or_default();
        holders.into_iter().map(|g| (g.owner, g.mode, g.fencing_token, g.expires_at_ms)).collect()
    }

    /// `resource`'s waiters as (owner, mode), in queue order.
    pub fn waiters(&self, resource: &str) -> Vec<(String, LockMode)> {
        let view = self.locks().view(resource);
        view.map(|v| v.waiters).unwrap_or_default().into_iter().map(|w| (w.owner, w.mode)).collect()
    }
}

/// An expected output.
pub fn out(response: Response, events: Vec<Event>) -> Output {
    Output { response, events }
}

/// The response of an acquire that was granted `grant`.
pub fn granted(owner: &str, mode: LockMode, fencing_token: u64, expires_at_ms: u64) -> Response {
    Response::LockAcquired(AcquireOutcome::Granted(Grant { owner: owner.into(), mode, fencing_token, expires_at_ms }))
}

/// The response of an acquire with a non-grant outcome.
pub fn acquired(outcome: AcquireOutcome) -> Response {
    Response::LockAcquired(outcome)
}

/// The response of a release.
pub fn released(released: bool) -> Response {
    Response::LockReleased { released }
}

/// `lock.granted`.
pub fn ev_granted(resource: &str, owner: &str, mode: LockMode, fencing_token: u64, expires_at_ms: u64) -> Event {
    Event::LockGranted { resource: resource.into(), owner: owner.into(), mode, fencing_token, expires_at_ms }
}

/// `lock.released`.
pub fn ev_released(resource: &str, owner: &str) -> Event {
    Event::LockReleased { resource: resource.into(), owner: owner.into() }
}

/// `lock.expired`.
pub fn ev_expired(resource: &str, owner: &str) -> Event {
    Event::LockExpired { resource: resource.into(), owner: owner.into() }
}

/// `lock.wait_timed_out`.
pub fn ev_timed_out(resource: &str, owner: &str) -> Event {
    Event::LockWaitTimedOut { resource: resource.into(), owner: owner.into() }
}

/// `lock.deadlock`.
pub fn ev_deadlock(victim: &str, resource: &str, cycle: &[&str]) -> Event {
    Event::LockDeadlock {
        victim: victim.into(),
        resource: resource.into(),
        cycle: cycle.iter().map(|o| o.to_string()).collect(),
    }
}

/// (owner, mode, token, expiry) as [`Replica::holders`] lists it.
pub fn h(owner: &str, mode: LockMode, fencing_token: u64, expires_at_ms: u64) -> (String, LockMode, u64, u64) {
    (owner.into(), mode, fencing_token, expires_at_ms)
}

/// (owner, mode) as [`Replica::waiters`] lists it.
pub fn w(owner: &str, mode: LockMode) -> (String, LockMode) {
    (owner.into(), mode)
}
