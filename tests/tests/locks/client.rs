//! Typed calls of the lock routes (API.md, "Distributed locks"), added to the
//! fixture's [`Api`] so every test addresses nodes the same way.
//!
//! Parsing is strict on purpose: a reply whose shape differs from the
//! contract is an `Err` naming the node, the route and the body, whatever the
//! test was about. Parsing a lock's state also checks what holds in every
//! state a user can observe: a held lock has a mode, an exclusive lock has
//! exactly one holder, and every holder holds it in the lock's mode.

use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::fields::{encode_query, str_field, u64_field};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::common::api::REQUEST_TIMEOUT;
use crate::common::{eventually, Api, Reply};

/// Time for a queue change (a waiter joining) to be visible in `GET /locks`.
pub const VISIBLE_TIMEOUT: Duration = Duration::from_secs(10);

/// What an acquire sends: `POST /locks/acquire`'s body, every field explicit.
#[derive(Debug, Clone)]
pub struct Acquire {
    pub resource: String,
    pub owner: String,
    /// `"exclusive"` or `"shared"`.
    pub mode: &'static str,
    pub ttl_ms: u64,
    pub wait_ms: u64,
}

impl Acquire {
    /// An exclusive try-lock with the contract's default lease (30 s).
    pub fn exclusive(resource: &str, owner: &str) -> Acquire {
        Acquire { resource: resource.into(), owner: owner.into(), mode: "exclusive", ttl_ms: 30_000, wait_ms: 0 }
    }

    /// A shared try-lock with the contract's default lease (30 s).
    pub fn shared(resource: &str, owner: &str) -> Acquire {
        Acquire { mode: "shared", ..Acquire::exclusive(resource, owner) }
    }

    /// The same request with lease `ttl_ms`.
    pub fn ttl_ms(self, ttl_ms: u64) -> Acquire {
        Acquire { ttl_ms, ..self }
    }

    /// The same request, willing to wait `wait_ms` in the queue.
    pub fn wait_ms(self, wait_ms: u64) -> Acquire {
        Acquire { wait_ms, ..self }
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        json!({
            "resource": self.resource,
            "owner": self.owner,
            "mode": self.mode,
            "ttl_ms": self.ttl_ms,
            "wait_ms": self.wait_ms,
        })
    }

    /// Client-side bound of this request: its wait plus an ordinary request.
    pub fn http_timeout(&self) -> Duration {
        Duration::from_millis(self.wait_ms) + REQUEST_TIMEOUT
    }
}

impl fmt::Display for Acquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "acquire {} {} by {} (ttl_ms {}, wait_ms {})",
            self.mode, self.resource, self.owner, self.ttl_ms, self.wait_ms
        )
    }
}

/// A 200 answer of `POST /locks/acquire`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub resource: String,
    pub owner: String,
    pub mode: String,
    pub fencing_token: u64,
    pub expires_at_ms: u64,
}

impl Grant {
    /// The grant in `reply`, checked against the request: `granted: true`,
    /// the same resource, owner and mode, numeric token and expiry.
    pub fn parse(reply: &Reply, request: &Acquire) -> Result<Grant, String> {
        let body = &reply.body;
        if reply.status != 200 || body["granted"] != Value::Bool(true) {
            return Err(format!("{request}: expected 200 with granted:true, got {reply}"));
        }
        let grant = Grant {
            resource: str_field(body, "resource")?,
            owner: str_field(body, "owner")?,
            mode: str_field(body, "mode")?,
            fencing_token: u64_field(body, "fencing_token")?,
            expires_at_ms: u64_field(body, "expires_at_ms")?,
        };
        if grant.resource != request.resource || grant.owner != request.owner || grant.mode != request.mode {
            return Err(format!("{request}: the grant names another resource, owner or mode: {reply}"));
        }
        Ok(grant)
    }
}

/// One holder in `GET /locks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub owner: String,
    pub mode: String,
    pub fencing_token: u64,
    pub expires_at_ms: u64,
}

/// One waiter in `GET /locks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiter {
    pub owner: String,
    pub mode: String,
    pub since_ms: u64,
    pub deadline_ms: u64,
    pub ttl_ms: u64,
}

/// `GET /locks?resource=R`, or one element of `GET /locks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockState {
    pub resource: String,
    /// `None` when free (JSON `null`).
    pub mode: Option<String>,
    /// In grant order.
    pub holders: Vec<Holder>,
    /// In queue order.
    pub waiters: Vec<Waiter>,
    /// The body as received, for failure messages.
    pub raw: Value,
}

impl LockState {
    /// Parses and checks one lock's state (see the module doc).
    pub fn parse(body: &Value) -> Result<LockState, String> {
        let context = |e: String| format!("{e} in lock state {body}");
        let holders = array_field(body, "holders")
            .map_err(context)?
            .iter()
            .map(|h| {
                Ok(Holder {
                    owner: str_field(h, "owner")?,
                    mode: mode_field(h)?,
                    fencing_token: u64_field(h, "fencing_token")?,
                    expires_at_ms: u64_field(h, "expires_at_ms")?,
                })
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(context)?;
        let waiters = array_field(body, "waiters")
            .map_err(context)?
            .iter()
            .map(|w| {
                Ok(Waiter {
                    owner: str_field(w, "owner")?,
                    mode: mode_field(w)?,
                    since_ms: u64_field(w, "since_ms")?,
                    deadline_ms: u64_field(w, "deadline_ms")?,
                    ttl_ms: u64_field(w, "ttl_ms")?,
                })
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(context)?;
        let mode = match &body["mode"] {
            Value::Null => None,
            _ => Some(mode_field(body).map_err(context)?),
        };
        let state = LockState {
            resource: str_field(body, "resource").map_err(context)?,
            mode,
            holders,
            waiters,
            raw: body.clone(),
        };
        state.check().map_err(context)?;
        Ok(state)
    }

    /// The invariants of any observable lock state.
    fn check(&self) -> Result<(), String> {
        match (&self.mode, self.holders.len()) {
            (None, 0) => {}
            (None, _) => return Err("holders but mode null".into()),
            (Some(_), 0) => return Err("a mode but no holder".into()),
            (Some(mode), n) => {
                if mode == "exclusive" && n != 1 {
                    return Err(format!("{n} holders of an exclusive lock"));
                }
                if self.holders.iter().any(|h| &h.mode != mode) {
                    return Err(format!("a holder whose mode is not the lock's mode {mode}"));
                }
            }
        }
        if self.holders.is_empty() && !self.waiters.is_empty() {
            return Err("waiters on a free lock (nobody to wait for)".into());
        }
        Ok(())
    }

    /// Owners of the holders, in order.
    pub fn holder_owners(&self) -> Vec<&str> {
        self.holders.iter().map(|h| h.owner.as_str()).collect()
    }

    /// Owners of the waiters, in queue order.
    pub fn waiter_owners(&self) -> Vec<&str> {
        self.waiters.iter().map(|w| w.owner.as_str()).collect()
    }

    /// True when nobody holds or waits.
    pub fn is_free(&self) -> bool {
        self.holders.is_empty() && self.waiters.is_empty() && self.mode.is_none()
    }
}

/// An edge of `GET /locks/wait_for`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    pub waiter: String,
    pub holder: String,
    pub resource: String,
}

/// `GET /locks/wait_for`.
#[derive(Debug, Clone)]
pub struct WaitFor {
    /// Sorted.
    pub edges: Vec<Edge>,
    pub deadlocks_resolved: u64,
}

/// How a spawned acquire ended, and when its answer arrived.
#[derive(Debug)]
pub struct Answer {
    pub request: Acquire,
    pub node: u64,
    pub reply: Result<Reply, String>,
    /// When the answer arrived.
    pub at: Instant,
    /// The same moment by the wall clock, in ms since the epoch (compares
    /// with the leader's `*_ms` stamps: one machine, one clock).
    pub at_ms: u64,
}

impl Answer {
    /// The grant, or a panic naming the request and what came back.
    pub fn granted(&self) -> Grant {
        let reply = self.reply.as_ref().unwrap_or_else(|e| panic!("{} via node{}: {e}", self.request, self.node));
        Grant::parse(reply, &self.request).unwrap_or_else(|e| panic!("via node{}: {e}", self.node))
    }

    /// The reply, or a panic on a transport error.
    pub fn reply(&self) -> &Reply {
        self.reply.as_ref().unwrap_or_else(|e| panic!("{} via node{}: {e}", self.request, self.node))
    }
}

impl Api {
    /// `POST /locks/acquire` on node `id`, bounded by the request's wait.
    pub async fn acquire(&self, id: u64, request: &Acquire) -> Result<Reply, String> {
        self.post_with_timeout(id, "/locks/acquire", &request.body(), request.http_timeout()).await
    }

    /// An acquire that must be granted: returns the checked grant, panics otherwise.
    pub async fn acquire_granted(&self, id: u64, request: &Acquire) -> Grant {
        let reply = self.acquire(id, request).await.unwrap_or_else(|e| panic!("{request}: {e}"));
        Grant::parse(&reply, request).unwrap_or_else(|e| panic!("via node{id}: {e}"))
    }

    /// Sends `request` to node `id` in a task of its own (a blocking acquire
    /// runs while the test goes on); the handle yields the [`Answer`].
    pub fn spawn_acquire(&self, id: u64, request: Acquire) -> JoinHandle<Answer> {
        let api = self.clone();
        tokio::spawn(async move {
            let reply = api.acquire(id, &request).await;
            Answer { request, node: id, reply, at: Instant::now(), at_ms: now_ms() }
        })
    }

    /// `POST /locks/release`: `Ok(released)`.
    pub async fn release(&self, id: u64, resource: &str, owner: &str) -> Result<bool, String> {
        let reply = self.post(id, "/locks/release", &json!({"resource": resource, "owner": owner})).await?;
        match (reply.status, &reply.body["released"]) {
            (200, Value::Bool(released)) => Ok(*released),
            _ => Err(format!("node{id} POST /locks/release {resource} by {owner}: {reply}")),
        }
    }

    /// A release that must answer `released: expected`; panics otherwise.
    pub async fn release_expect(&self, id: u64, resource: &str, owner: &str, expected: bool) {
        let released = self.release(id, resource, owner).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(released, expected, "node{id} POST /locks/release {resource} by {owner}: released");
    }

    /// `POST /locks/renew`: `Ok(renewed)`.
    pub async fn renew(&self, id: u64, owner: &str, ttl_ms: u64) -> Result<u64, String> {
        let reply = self.post(id, "/locks/renew", &json!({"owner": owner, "ttl_ms": ttl_ms})).await?;
        match (reply.status, reply.body["renewed"].as_u64()) {
            (200, Some(renewed)) => Ok(renewed),
            _ => Err(format!("node{id} POST /locks/renew by {owner}: {reply}")),
        }
    }

    /// `GET /locks?resource=R` (default consistency: linearizable).
    pub async fn lock_state(&self, id: u64, resource: &str) -> Result<LockState, String> {
        self.lock_state_at(id, resource, None).await
    }

    /// `GET /locks?resource=R[&consistency=C]`; also checks that the answer
    /// names `resource`.
    pub async fn lock_state_at(&self, id: u64, resource: &str, consistency: Option<&str>) -> Result<LockState, String> {
        let mut path = format!("/locks?resource={}", encode_query(resource));
        if let Some(consistency) = consistency {
            path.push_str(&format!("&consistency={consistency}"));
        }
        let body = self.get_ok(id, &path).await?;
        let state = LockState::parse(&body).map_err(|e| format!("node{id} GET {path}: {e}"))?;
        if state.resource != resource {
            return Err(format!("node{id} GET {path}: names resource {:?}: {body}", state.resource));
        }
        Ok(state)
    }

    /// `GET /locks[?consistency=C]`: every held lock.
    pub async fn held_locks(&self, id: u64, consistency: Option<&str>) -> Result<Vec<LockState>, String> {
        let path = consistency.map_or_else(|| "/locks".to_owned(), |c| format!("/locks?consistency={c}"));
        let body = self.get_ok(id, &path).await?;
        array_field(&body, "locks")
            .map_err(|e| format!("node{id} GET {path}: {e}: {body}"))?
            .iter()
            .map(|lock| LockState::parse(lock).map_err(|e| format!("node{id} GET {path}: {e}")))
            .collect()
    }

    /// `GET /locks/wait_for`.
    pub async fn wait_for_graph(&self, id: u64) -> Result<WaitFor, String> {
        let body = self.get_ok(id, "/locks/wait_for").await?;
        let context = |e: String| format!("node{id} GET /locks/wait_for: {e}: {body}");
        let mut edges = array_field(&body, "edges")
            .map_err(context)?
            .iter()
            .map(|e| {
                Ok(Edge {
                    waiter: str_field(e, "waiter")?,
                    holder: str_field(e, "holder")?,
                    resource: str_field(e, "resource")?,
                })
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(context)?;
        edges.sort();
        let deadlocks_resolved = u64_field(&body, "deadlocks_resolved").map_err(context)?;
        Ok(WaitFor { edges, deadlocks_resolved })
    }

    /// Waits until node `id` shows exactly `owners` waiting for `resource`,
    /// in this order; returns that state. The way a test knows that a
    /// blocking acquire it spawned has been queued (its place in the queue is
    /// then fixed) before it sends the next request.
    pub async fn wait_queued(&self, id: u64, resource: &str, owners: &[&str]) -> LockState {
        let what = format!("node{id}: waiters of {resource} to be {owners:?}");
        eventually(what, VISIBLE_TIMEOUT, async || {
            let state = self.lock_state(id, resource).await?;
            if state.waiter_owners() == owners {
                Ok(state)
            } else {
                Err(format!("holders {:?}, waiters {:?}", state.holder_owners(), state.waiter_owners()))
            }
        })
        .await
    }
}

/// Milliseconds since the Unix epoch on this machine (the nodes' clock too).
pub fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).expect("the clock is after 1970");
    u64::try_from(since.as_millis()).expect("milliseconds fit in u64")
}

/// Awaits a spawned acquire for at most `bound`; panics if it is still
/// pending then (`what` says what the test expected to end it).
pub async fn answer_within(handle: JoinHandle<Answer>, bound: Duration, what: &str) -> Answer {
    match tokio::time::timeout(bound, handle).await {
        Ok(joined) => joined.expect("the acquire task panicked"),
        Err(_) => panic!("{what}: the blocking acquire got no answer within {bound:?}"),
    }
}

fn array_field<'a>(body: &'a Value, name: &str) -> Result<&'a Vec<Value>, String> {
    body[name].as_array().ok_or_else(|| format!("field {name} is not an array"))
}

fn mode_field(body: &Value) -> Result<String, String> {
    match body["mode"].as_str() {
        Some(mode @ ("shared" | "exclusive")) => Ok(mode.to_owned()),
        _ => Err(format!("mode is not \"shared\" or \"exclusive\": {}", body["mode"])),
    }
}
