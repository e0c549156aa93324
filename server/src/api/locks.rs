//! Lock routes: `/locks/acquire`, `/locks/release`, `/locks/renew`,
//! `/locks`, `/locks/wait_for`.
//!
//! A blocking acquire (`wait_ms > 0`) that the state machine queued waits
//! here for the event that settles it: granted, timed out (the waiter was
//! removed by a committed tick, so it is never granted afterwards), or
//! aborted as a deadlock victim. Events are those this node applies, so any
//! node can serve the wait, whichever node leads.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::Json;
use dsync_engine::sm_store::EventRecord;
use dsync_engine::Consistency;
use dsync_statemachine::lock::{AcquireOutcome, AcquireRequest, Grant, LockMode};
use dsync_statemachine::{Command, Event, Response};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::error::ApiError;
use super::extract::{JsonBody, QueryParams};
use super::{check_name, AppState};

/// Default lease length.
const TTL_MS_DEFAULT: u64 = 30_000;
/// Longest lease: a day. Longer leases outlive crashed clients for too long.
const TTL_MS_MAX: u64 = 86_400_000;
/// Longest blocking wait: five minutes (HTTP clients and proxies give up
/// earlier than that anyway).
const WAIT_MS_MAX: u64 = 300_000;

/// Body of `POST /locks/acquire`.
#[derive(Deserialize)]
pub struct AcquireBody {
    resource: String,
    owner: String,
    #[serde(default = "exclusive")]
    mode: LockMode,
    #[serde(default = "ttl_default")]
    ttl_ms: u64,
    #[serde(default)]
    wait_ms: u64,
}

fn exclusive() -> LockMode {
    LockMode::Exclusive
}

fn ttl_default() -> u64 {
    TTL_MS_DEFAULT
}

fn check_ttl(ttl_ms: u64) -> Result<(), ApiError> {
    if ttl_ms == 0 || ttl_ms > TTL_MS_MAX {
        return Err(ApiError::bad_request(format!("ttl_ms must be 1..={TTL_MS_MAX}, got {ttl_ms}")));
    }
    Ok(())
}

/// `POST /locks/acquire`.
pub async fn acquire(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<AcquireBody>,
) -> Result<Json<Value>, ApiError> {
    check_name("resource", &body.resource)?;
    check_name("owner", &body.owner)?;
    check_ttl(body.ttl_ms)?;
    if body.wait_ms > WAIT_MS_MAX {
        return Err(ApiError::bad_request(format!("wait_ms must be 0..={WAIT_MS_MAX}, got {}", body.wait_ms)));
    }
    let started = Instant::now();
    let request = AcquireRequest {
        resource: body.resource,
        owner: body.owner,
        mode: body.mode,
        ttl_ms: body.ttl_ms,
        wait_ms: body.wait_ms,
    };
    let result = acquire_outcome(&state, request.clone()).await;
    let outcome = match &result {
        Ok(_) => "granted",
        Err(e) => e.code(),
    };
    state.metrics.lock_acquired(outcome, started.elapsed());
    result.map(|grant| Json(grant_json(&request.resource, &grant)))
}

/// Proposes the acquire and, if it was queued, waits for what settles it.
async fn acquire_outcome(state: &AppState, request: AcquireRequest) -> Result<Grant, ApiError> {
    // Subscribe before proposing so the settling event cannot be missed.
    let mut events = state.node.subscribe();
    let (log_id, response) = state.node.write(Command::LockAcquire(request.clone())).await?;
    match response {
        Response::LockAcquired(AcquireOutcome::Granted(grant)) => Ok(grant),
        Response::LockAcquired(AcquireOutcome::Conflict) => Err(ApiError::conflict(format!(
            "{} is held in an incompatible mode or has waiters, and wait_ms is 0",
            request.resource
        ))),
        Response::LockAcquired(AcquireOutcome::Deadlock) => Err(deadlock(&request)),
        Response::LockAcquired(AcquireOutcome::Queued) => {
            state.metrics.lock_queued();
            // The cluster times the wait out itself; give it time to commit
            // that, then stop waiting for an answer that is not coming.
            let patience = Duration::from_millis(request.wait_ms) + state.node.request_timeout();
            wait_until_settled(state, &mut events, log_id.index, &request, patience).await
        }
        other => Err(ApiError::internal(format!("acquire answered {other:?}"))),
    }
}

async fn wait_until_settled(
    state: &AppState,
    events: &mut broadcast::Receiver<EventRecord>,
    after_index: u64,
    request: &AcquireRequest,
    patience: Duration,
) -> Result<Grant, ApiError> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let record = match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => {
                return Err(ApiError::unavailable(
                    "the cluster did not settle this wait in time (no quorum?); the request may still be granted \
                     later and then expire",
                    state.node.leader().map(dsync_engine::node_name),
                ))
            }
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                // Events were lost: the state tells how the wait stands.
                match wait_state(state, request) {
                    WaitState::Held(grant) => return Ok(grant),
                    WaitState::Waiting => continue,
                    WaitState::Gone => {
                        return Err(ApiError::timeout(format!(
                            "{} was not granted: the wait ended (timed out, or aborted as a deadlock victim)",
                            request.resource
                        )))
                    }
                }
            }
            Ok(Err(broadcast::error::RecvError::Closed)) => {
                return Err(ApiError::unavailable("the node is shutting down", None))
            }
            Ok(Ok(record)) => record,
        };
        if record.index <= after_index {
            continue;
        }
        match settled(&record.events, request) {
            Some(Settled::Granted(grant)) => return Ok(grant),
            Some(Settled::TimedOut) => {
                return Err(ApiError::timeout(format!(
                    "{} was not granted within wait_ms={}",
                    request.resource, request.wait_ms
                )))
            }
            Some(Settled::Deadlock) => return Err(deadlock(request)),
            None => {}
        }
    }
}

/// How one entry settled a queued request, if it did.
enum Settled {
    Granted(Grant),
    TimedOut,
    Deadlock,
}

/// Reads an entry's events as a whole: a request whose owner was aborted as
/// a deadlock victim in the entry failed, even if the entry granted it
/// first (the abort released that grant again).
fn settled(events: &[Event], request: &AcquireRequest) -> Option<Settled> {
    let mine = |resource: &str, owner: &str| resource == request.resource && owner == request.owner;
    let mut outcome = None;
    for event in events {
        match event {
            Event::LockGranted { resource, owner, mode, fencing_token, expires_at_ms } if mine(resource, owner) => {
                let grant = Grant {
                    owner: owner.clone(),
                    mode: *mode,
                    fencing_token: *fencing_token,
                    expires_at_ms: *expires_at_ms,
                };
                outcome = Some(Settled::Granted(grant));
            }
            Event::LockWaitTimedOut { resource, owner } if mine(resource, owner) => outcome = Some(Settled::TimedOut),
            Event::LockDeadlock { victim, resource, .. }
                if victim == &request.owner && (resource == &request.resource || outcome.is_some()) =>
            {
                outcome = Some(Settled::Deadlock)
            }
            _ => {}
        }
    }
    outcome
}

/// Where a queued request stands, read from the applied state.
enum WaitState {
    /// Granted: the owner holds the lock.
    Held(Grant),
    /// Still queued.
    Waiting,
    /// Neither: the wait ended without a grant.
    Gone,
}

fn wait_state(state: &AppState, request: &AcquireRequest) -> WaitState {
    state.node.read_state(|s, _| {
        let Some(view) = s.locks.view(&request.resource) else { return WaitState::Gone };
        // A holder in a weaker mode is an upgrade still waiting.
        let satisfies =
            |g: &Grant| g.owner == request.owner && (g.mode == request.mode || g.mode == LockMode::Exclusive);
        if let Some(grant) = view.holders.into_iter().find(satisfies) {
            WaitState::Held(grant)
        } else if view.waiters.iter().any(|w| w.owner == request.owner) {
            WaitState::Waiting
        } else {
            WaitState::Gone
        }
    })
}

fn deadlock(request: &AcquireRequest) -> ApiError {
    ApiError::deadlock(format!(
        "waiting for {} closed a cycle in the wait-for graph and {} was chosen as the victim; its locks were released",
        request.resource, request.owner
    ))
}

fn grant_json(resource: &str, grant: &Grant) -> Value {
    json!({
        "granted": true,
        "resource": resource,
        "owner": grant.owner,
        "mode": grant.mode,
        "fencing_token": grant.fencing_token,
        "expires_at_ms": grant.expires_at_ms,
    })
}

/// Body of `POST /locks/release`.
#[derive(Deserialize)]
pub struct ReleaseBody {
    resource: String,
    owner: String,
}

/// `POST /locks/release`: hands the lock to the next waiters at once.
pub async fn release(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ReleaseBody>,
) -> Result<Json<Value>, ApiError> {
    check_name("resource", &body.resource)?;
    check_name("owner", &body.owner)?;
    let command = Command::LockRelease { resource: body.resource, owner: body.owner };
    match state.node.write(command).await?.1 {
        Response::LockReleased { released } => Ok(Json(json!({ "released": released }))),
        other => Err(ApiError::internal(format!("release answered {other:?}"))),
    }
}

/// Body of `POST /locks/renew`.
#[derive(Deserialize)]
pub struct RenewBody {
    owner: String,
    #[serde(default = "ttl_default")]
    ttl_ms: u64,
}

/// `POST /locks/renew`: the owner's keepalive for all its locks.
pub async fn renew(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<RenewBody>,
) -> Result<Json<Value>, ApiError> {
    check_name("owner", &body.owner)?;
    check_ttl(body.ttl_ms)?;
    match state.node.write(Command::LockRenew { owner: body.owner, ttl_ms: body.ttl_ms }).await?.1 {
        Response::LockRenewed { renewed } => Ok(Json(json!({ "renewed": renewed }))),
        other => Err(ApiError::internal(format!("renew answered {other:?}"))),
    }
}

/// Query of `GET /locks`.
#[derive(Deserialize)]
pub struct ListQuery {
    resource: Option<String>,
    #[serde(default)]
    consistency: Consistency,
}

/// `GET /locks?resource=`: one lock (free locks have empty lists), or every
/// held lock.
pub async fn list(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    if let Some(resource) = &query.resource {
        check_name("resource", resource)?;
    }
    state.node.read_barrier(query.consistency).await?;
    let body = match query.resource {
        Some(resource) => state.node.read_state(|s, _| match s.locks.view(&resource) {
            Some(view) => json!(view),
            None => json!({"resource": resource, "mode": null, "holders": [], "waiters": []}),
        }),
        None => state.node.read_state(|s, _| json!({ "locks": s.locks.held() })),
    };
    Ok(Json(body))
}

/// Query of `GET /locks/wait_for`.
#[derive(Deserialize)]
pub struct WaitForQuery {
    #[serde(default)]
    consistency: Consistency,
}

/// `GET /locks/wait_for`: the wait-for graph.
pub async fn wait_for(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<WaitForQuery>,
) -> Result<Json<Value>, ApiError> {
    state.node.read_barrier(query.consistency).await?;
    Ok(Json(
        state.node.read_state(
            |s, _| json!({"edges": s.locks.wait_for(), "deadlocks_resolved": s.locks.deadlocks_resolved()}),
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> AcquireRequest {
        AcquireRequest { resource: "r".into(), owner: "a".into(), mode: LockMode::Exclusive, ttl_ms: 10, wait_ms: 10 }
    }

    fn granted(owner: &str) -> Event {
        Event::LockGranted {
            resource: "r".into(),
            owner: owner.into(),
            mode: LockMode::Exclusive,
            fencing_token: 7,
            expires_at_ms: 9,
        }
    }

    fn victim(resource: &str) -> Event {
        Event::LockDeadlock { victim: "a".into(), resource: resource.into(), cycle: vec!["a".into(), "b".into()] }
    }

    #[test]
    fn a_grant_settles_the_wait_with_its_token() {
        let events = [granted("other"), granted("a")];
        assert!(matches!(settled(&events, &request()), Some(Settled::Granted(g)) if g.fencing_token == 7));
    }

    #[test]
    fn a_grant_taken_back_by_a_deadlock_abort_in_the_same_entry_is_a_deadlock() {
        let events = [granted("a"), victim("other-resource")];
        assert!(matches!(settled(&events, &request()), Some(Settled::Deadlock)));
    }

    #[test]
    fn the_pending_request_failing_as_victim_is_a_deadlock() {
        assert!(matches!(settled(&[victim("r")], &request()), Some(Settled::Deadlock)));
    }

    #[test]
    fn a_victim_elsewhere_does_not_settle_a_still_pending_request() {
        assert!(settled(&[victim("other-resource")], &request()).is_none());
    }

    #[test]
    fn a_timeout_settles_and_other_owners_events_do_not() {
        let timed_out = Event::LockWaitTimedOut { resource: "r".into(), owner: "a".into() };
        assert!(matches!(settled(&[timed_out], &request()), Some(Settled::TimedOut)));
        assert!(settled(&[granted("b")], &request()).is_none());
    }
}
