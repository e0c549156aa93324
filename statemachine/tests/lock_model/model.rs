//! The reference: the lock rules written the obvious way. Flat lists of
//! holds and waits scanned on every step, no index, and deadlock cycles
//! found by enumerating every simple path. Slow and plainly correct; the
//! real table must agree with it entry for entry.

use dsync_statemachine::lock::{AcquireOutcome, AcquireRequest, Grant, LockMode, WaitEdge, Waiter};
use dsync_statemachine::{Command, Event, Response};

/// One hold: a grant of a resource.
#[derive(Debug, Clone)]
struct Hold {
    resource: String,
    grant: Grant,
}

/// One pending request for a resource.
#[derive(Debug, Clone)]
struct Wait {
    resource: String,
    waiter: Waiter,
}

/// The whole reference state.
#[derive(Debug, Default)]
pub struct Model {
    /// Every hold; a resource's holders in grant order are its holds here, in order.
    holds: Vec<Hold>,
    /// Every pending request; a resource's queue is its waits here, in order.
    waits: Vec<Wait>,
    /// (owner, first_seen) of every owner that holds or waits.
    first_seen: Vec<(String, u64)>,
    /// The clock: max of the entries' times.
    now_ms: u64,
    /// Owners aborted so far.
    pub deadlocks_resolved: u64,
    /// Fencing tokens issued so far: the last grant's token.
    tokens_issued: u64,
}

/// True if holds in `a` and `b` may coexist.
fn compatible(a: LockMode, b: LockMode) -> bool {
    a == LockMode::Shared && b == LockMode::Shared
}

impl Model {
    /// Applies one entry: time passes first, then the command.
    pub fn apply(&mut self, index: u64, time_ms: u64, command: &Command) -> (Response, Vec<Event>) {
        self.now_ms = self.now_ms.max(time_ms);
        let mut events = Vec::new();
        self.expire(&mut events);
        let response = match command {
            Command::LockAcquire(request) => Response::LockAcquired(self.acquire(index, request, &mut events)),
            Command::LockRelease { resource, owner } => {
                Response::LockReleased { released: self.release(resource, owner, &mut events) }
            }
            Command::LockRenew { owner, ttl_ms } => Response::LockRenewed { renewed: self.renew(owner, *ttl_ms) },
            Command::Tick => Response::Empty,
            _ => unreachable!("the model only knows locks"),
        };
        (response, events)
    }

    /// `resource`'s holders in grant order.
    pub fn holders(&self, resource: &str) -> Vec<Grant> {
        self.holds.iter().filter(|h| h.resource == resource).map(|h| h.grant.clone()).collect()
    }

    /// `resource`'s waiters in queue order.
    pub fn waiters(&self, resource: &str) -> Vec<Waiter> {
        self.waits.iter().filter(|w| w.resource == resource).map(|w| w.waiter.clone()).collect()
    }

    /// Every wait-for edge, sorted, once each.
    pub fn edges(&self) -> Vec<WaitEdge> {
        let mut edges = Vec::new();
        for wait in &self.waits {
            for holder in self.blockers(wait) {
                edges.push(WaitEdge { waiter: wait.waiter.owner.clone(), holder, resource: wait.resource.clone() });
            }
        }
        edges.sort();
        edges.dedup();
        edges
    }

    /// The earliest lease end or wait deadline.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let leases = self.holds.iter().map(|h| h.grant.expires_at_ms);
        leases.chain(self.waits.iter().map(|w| w.waiter.deadline_ms)).min()
    }

    /// Number of holds.
    pub fn hold_count(&self) -> usize {
        self.holds.len()
    }

    fn hold_index(&self, resource: &str, owner: &str) -> Option<usize> {
        self.holds.iter().position(|h| h.resource == resource && h.grant.owner == owner)
    }

    fn wait_index(&self, resource: &str, owner: &str) -> Option<usize> {
        self.waits.iter().position(|w| w.resource == resource && w.waiter.owner == owner)
    }

    fn expire(&mut self, events: &mut Vec<Event>) {
        let now = self.now_ms;
        let mut expired: Vec<Hold> = self.holds.iter().filter(|h| h.grant.expires_at_ms <= now).cloned().collect();
        expired.sort_by_key(|h| (h.grant.expires_at_ms, h.resource.clone(), h.grant.owner.clone()));
        let mut timed_out: Vec<Wait> = self.waits.iter().filter(|w| w.waiter.deadline_ms <= now).cloned().collect();
        timed_out.sort_by_key(|w| (w.waiter.deadline_ms, w.resource.clone(), w.waiter.owner.clone()));
        self.holds.retain(|h| h.grant.expires_at_ms > now);
        self.waits.retain(|w| w.waiter.deadline_ms > now);
        let mut touched = Vec::new();
        for hold in expired {
            events.push(Event::LockExpired { resource: hold.resource.clone(), owner: hold.grant.owner });
            touched.push(hold.resource);
        }
        for wait in timed_out {
            events.push(Event::LockWaitTimedOut { resource: wait.resource.clone(), owner: wait.waiter.owner });
            touched.push(wait.resource);
        }
        touched.sort();
        touched.dedup();
        for resource in touched {
            self.grant(&resource, events);
        }
        self.forget_idle();
    }

    fn acquire(&mut self, index: u64, request: &AcquireRequest, events: &mut Vec<Event>) -> AcquireOutcome {
        let (resource, owner) = (request.resource.as_str(), request.owner.as_str());
        let held = self.hold_index(resource, owner);
        let expires_at_ms = self.now_ms.saturating_add(request.ttl_ms);
        if let Some(i) = held {
            let mode = self.holds[i].grant.mode;
            if mode == request.mode || mode == LockMode::Exclusive {
                self.holds[i].grant.expires_at_ms = expires_at_ms;
                return AcquireOutcome::Granted(self.holds[i].grant.clone());
            }
        }
        if self.wait_index(resource, owner).is_some() {
            return AcquireOutcome::Queued;
        }
        let holders = self.holders(resource);
        let queue = self.waiters(resource);
        let position = if let Some(i) = held {
            if holders.len() == 1 {
                let new_grant = self.issue(owner, request.mode, expires_at_ms);
                self.holds[i].grant = new_grant.clone();
                events.push(granted_event(resource, &new_grant));
                return AcquireOutcome::Granted(new_grant);
            }
            queue.iter().take_while(|w| holders.iter().any(|h| h.owner == w.owner)).count()
        } else if queue.is_empty() && holders.iter().all(|h| compatible(h.mode, request.mode)) {
            self.note(owner, index);
            let new_grant = self.issue(owner, request.mode, expires_at_ms);
            self.holds.push(Hold { resource: resource.into(), grant: new_grant.clone() });
            events.push(granted_event(resource, &new_grant));
            return AcquireOutcome::Granted(new_grant);
        } else {
            queue.len()
        };
        if request.wait_ms == 0 {
            return AcquireOutcome::Conflict;
        }
        self.note(owner, index);
        let waiter = Waiter {
            owner: owner.into(),
            mode: request.mode,
            since_ms: self.now_ms,
            deadline_ms: self.now_ms.saturating_add(request.wait_ms),
            ttl_ms: request.ttl_ms,
        };
        // Insert before the resource's `position`-th waiter, or after all.
        let at = self.waits.iter().enumerate().filter(|(_, w)| w.resource == resource).nth(position).map(|(i, _)| i);
        self.waits.insert(at.unwrap_or(self.waits.len()), Wait { resource: resource.into(), waiter });
        while let Some(cycle) = self.shortest_cycle(owner) {
            let victim = cycle.iter().max_by_key(|o| (self.age(o), (*o).clone())).unwrap().clone();
            self.abort(&victim, &cycle, events);
            if victim == owner {
                return AcquireOutcome::Deadlock;
            }
        }
        match (self.wait_index(resource, owner), self.hold_index(resource, owner)) {
            (None, Some(i)) => AcquireOutcome::Granted(self.holds[i].grant.clone()),
            _ => AcquireOutcome::Queued,
        }
    }

    fn release(&mut self, resource: &str, owner: &str, events: &mut Vec<Event>) -> bool {
        let Some(i) = self.hold_index(resource, owner) else {
            return false;
        };
        self.holds.remove(i);
        events.push(Event::LockReleased { resource: resource.into(), owner: owner.into() });
        self.grant(resource, events);
        self.forget_idle();
        true
    }

    fn renew(&mut self, owner: &str, ttl_ms: u64) -> u64 {
        let expires_at_ms = self.now_ms.saturating_add(ttl_ms);
        let mut renewed = 0;
        for hold in self.holds.iter_mut().filter(|h| h.grant.owner == owner) {
            hold.grant.expires_at_ms = expires_at_ms;
            renewed += 1;
        }
        renewed
    }

    /// Grants from the front of `resource`'s queue while compatible.
    fn grant(&mut self, resource: &str, events: &mut Vec<Event>) {
        loop {
            let Some(front) = self.waiters(resource).into_iter().next() else {
                return;
            };
            let others = self.holders(resource).into_iter().filter(|h| h.owner != front.owner);
            if !others.clone().all(|h| compatible(h.mode, front.mode)) {
                return;
            }
            let grant = self.issue(&front.owner, front.mode, self.now_ms.saturating_add(front.ttl_ms));
            match self.hold_index(resource, &front.owner) {
                Some(i) => self.holds[i].grant = grant.clone(),
                None => self.holds.push(Hold { resource: resource.into(), grant: grant.clone() }),
            }
            let i = self.wait_index(resource, &front.owner).unwrap();
            self.waits.remove(i);
            events.push(granted_event(resource, &grant));
        }
    }

    /// The owners `wait` waits for.
    fn blockers(&self, wait: &Wait) -> Vec<String> {
        let mut found = Vec::new();
        for hold in self.holds.iter().filter(|h| h.resource == wait.resource) {
            if hold.grant.owner != wait.waiter.owner && !compatible(hold.grant.mode, wait.waiter.mode) {
                found.push(hold.grant.owner.clone());
            }
        }
        for ahead in self.waits.iter().filter(|w| w.resource == wait.resource) {
            if ahead.waiter.owner == wait.waiter.owner {
                break;
            }
            if !compatible(ahead.waiter.mode, wait.waiter.mode) {
                found.push(ahead.waiter.owner.clone());
            }
        }
        found
    }

    /// Every simple cycle through `start`, enumerated; the shortest, then
    /// the smallest by names.
    fn shortest_cycle(&self, start: &str) -> Option<Vec<String>> {
        let edges = self.edges();
        let mut best: Option<Vec<String>> = None;
        let mut stack = vec![vec![start.to_string()]];
        while let Some(path) = stack.pop() {
            let last = path.last().unwrap();
            for edge in edges.iter().filter(|e| &e.waiter == last) {
                if edge.holder == start {
                    let better = best.as_ref().is_none_or(|b| (path.len(), &path) < (b.len(), b));
                    if better {
                        best = Some(path.clone());
                    }
                } else if !path.contains(&edge.holder) {
                    let mut longer = path.clone();
                    longer.push(edge.holder.clone());
                    stack.push(longer);
                }
            }
        }
        best
    }

    fn abort(&mut self, victim: &str, cycle: &[String], events: &mut Vec<Event>) {
        let mut waited: Vec<String> =
            self.waits.iter().filter(|w| w.waiter.owner == victim).map(|w| w.resource.clone()).collect();
        let mut held: Vec<String> =
            self.holds.iter().filter(|h| h.grant.owner == victim).map(|h| h.resource.clone()).collect();
        waited.sort();
        held.sort();
        self.waits.retain(|w| w.waiter.owner != victim);
        self.holds.retain(|h| h.grant.owner != victim);
        for resource in &waited {
            events.push(Event::LockDeadlock {
                victim: victim.into(),
                resource: resource.clone(),
                cycle: cycle.to_vec(),
            });
        }
        for resource in &held {
            events.push(Event::LockReleased { resource: resource.clone(), owner: victim.into() });
        }
        let mut touched = [waited, held].concat();
        touched.sort();
        touched.dedup();
        for resource in touched {
            self.grant(&resource, events);
        }
        self.deadlocks_resolved += 1;
        self.forget_idle();
    }

    /// A new grant, with the token after the last one issued.
    fn issue(&mut self, owner: &str, mode: LockMode, expires_at_ms: u64) -> Grant {
        self.tokens_issued += 1;
        Grant { owner: owner.into(), mode, fencing_token: self.tokens_issued, expires_at_ms }
    }

    fn note(&mut self, owner: &str, index: u64) {
        if !self.first_seen.iter().any(|(o, _)| o == owner) {
            self.first_seen.push((owner.into(), index));
        }
    }

    fn age(&self, owner: &str) -> u64 {
        self.first_seen.iter().find(|(o, _)| o == owner).unwrap().1
    }

    fn forget_idle(&mut self) {
        let (holds, waits) = (&self.holds, &self.waits);
        self.first_seen
            .retain(|(o, _)| holds.iter().any(|h| &h.grant.owner == o) || waits.iter().any(|w| &w.waiter.owner == o));
    }
}

fn granted_event(resource: &str, grant: &Grant) -> Event {
    Event::LockGranted {
        resource: resource.into(),
        owner: grant.owner.clone(),
        mode: grant.mode,
        fencing_token: grant.fencing_token,
        expires_at_ms: grant.expires_at_ms,
    }
}
