//! Queue routes: `/queue/produce`, `/queue/consume`, `/queue/ack`,
//! `/queue/nack`, `/queue/stats`.
//!
//! A produce answers once its entry is committed: a majority of the
//! replicas has the messages in its fsynced WAL. A consume is a committed
//! command too (the lease of each message is replicated state), so a
//! failover neither loses in-flight messages nor hands one to two consumers
//! inside its visibility window. Long polling (`wait_ms`) waits for the
//! events that make messages deliverable, never in a busy loop.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::Json;
use dsync_engine::ring::Ring;
use dsync_engine::Consistency;
use dsync_statemachine::queue::{self, NewMessage};
use dsync_statemachine::{Command, Event, Response};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::extract::{JsonBody, QueryParams};
use super::{check_name, AppState};

/// Most messages one consume returns.
const CONSUME_MAX: u32 = 1000;
/// Longest visibility: 12 hours, as SQS.
const VISIBILITY_MS_MAX: u64 = 43_200_000;
/// Longest long-poll wait: five minutes.
const WAIT_MS_MAX: u64 = 300_000;
/// Replicas the placement shows per queue.
const REPLICAS: usize = 3;

/// `POST /queue/produce`: `message` or `messages`, optional `key`.
pub async fn produce(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let started = Instant::now();
    let queue = string_field(&body, "queue")?.ok_or_else(|| ApiError::bad_request("missing field `queue`"))?;
    check_name("queue", &queue)?;
    let key = string_field(&body, "key")?;
    if let Some(key) = &key {
        check_name("key", key)?;
    }
    let values = match (body.get("message"), body.get("messages")) {
        (Some(one), None) => vec![one.clone()],
        (None, Some(Value::Array(many))) if !many.is_empty() => many.clone(),
        (None, Some(Value::Array(_))) => return Err(ApiError::bad_request("`messages` is empty")),
        (None, Some(_)) => return Err(ApiError::bad_request("`messages` must be an array")),
        (Some(_), Some(_)) => return Err(ApiError::bad_request("give `message` or `messages`, not both")),
        (None, None) => return Err(ApiError::bad_request("missing field `message` (or `messages`)")),
    };
    let mut messages = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        let body = value.to_string();
        if body.len() > state.max_value_bytes {
            return Err(ApiError::too_large(format!(
                "message {i} is {} bytes encoded; the limit is {}",
                body.len(),
                state.max_value_bytes
            )));
        }
        messages.push(NewMessage { key: key.clone(), body });
    }
    let command = Command::QueueProduce { queue: queue.clone(), messages, max_deliveries: state.max_deliveries };
    let ids = match state.node.write(command).await?.1 {
        Response::QueueProduced { ids } => ids,
        other => return Err(ApiError::internal(format!("produce answered {other:?}"))),
    };
    state.metrics.queue_produced(started.elapsed());
    Ok(Json(json!({ "queue": queue, "ids": ids })))
}

/// A string field that may be absent; any other type is a bad request.
fn string_field(body: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match body.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::bad_request(format!("`{name}` must be a string"))),
    }
}

/// Body of `POST /queue/consume`.
#[derive(Deserialize)]
pub struct ConsumeBody {
    queue: String,
    consumer: String,
    #[serde(default = "one")]
    max: u32,
    #[serde(default = "visibility_default")]
    visibility_ms: u64,
    #[serde(default)]
    wait_ms: u64,
}

fn one() -> u32 {
    1
}

fn visibility_default() -> u64 {
    30_000
}

/// `POST /queue/consume`: leases up to `max` messages for `visibility_ms`.
pub async fn consume(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<ConsumeBody>,
) -> Result<Json<Value>, ApiError> {
    check_name("queue", &body.queue)?;
    check_name("consumer", &body.consumer)?;
    if body.max == 0 || body.max > CONSUME_MAX {
        return Err(ApiError::bad_request(format!("max must be 1..={CONSUME_MAX}, got {}", body.max)));
    }
    if body.visibility_ms == 0 || body.visibility_ms > VISIBILITY_MS_MAX {
        return Err(ApiError::bad_request(format!("visibility_ms must be 1..={VISIBILITY_MS_MAX}")));
    }
    if body.wait_ms > WAIT_MS_MAX {
        return Err(ApiError::bad_request(format!("wait_ms must be 0..={WAIT_MS_MAX}")));
    }
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(body.wait_ms);
    let mut events = state.node.subscribe();
    loop {
        // Only propose a consume (a Raft write) when a message may be
        // ready; an idle poll costs a ReadIndex round at most.
        if ready_somewhere(&state, &body.queue).await? {
            let command = Command::QueueConsume {
                queue: body.queue.clone(),
                consumer: body.consumer.clone(),
                max: body.max,
                visibility_ms: body.visibility_ms,
            };
            let messages = match state.node.write(command).await?.1 {
                Response::QueueConsumed { messages } => messages,
                other => return Err(ApiError::internal(format!("consume answered {other:?}"))),
            };
            if !messages.is_empty() {
                state.metrics.queue_consumed(started.elapsed());
                let messages: Vec<Value> = messages
                    .into_iter()
                    .map(|m| {
                        let mut out = json!({
                            "id": m.id,
                            "message": serde_json::from_str::<Value>(&m.body).unwrap_or(Value::Null),
                            "delivery_count": m.delivery_count,
                        });
                        if let Some(key) = m.key {
                            out["key"] = json!(key);
                        }
                        out
                    })
                    .collect();
                return Ok(Json(json!({ "messages": messages })));
            }
        }
        if !wait_for_ready(&mut events, &body.queue, deadline).await {
            return Ok(Json(json!({ "messages": [] })));
        }
    }
}

/// Whether the queue has a ready message, first by this node's state and,
/// if not, after catching up with the leader (ReadIndex).
async fn ready_somewhere(state: &AppState, queue: &str) -> Result<bool, ApiError> {
    let ready =
        |state: &AppState| state.node.read_state(|_, store| queue::stats(store, queue).is_some_and(|s| s.ready > 0));
    if ready(state) {
        return Ok(true);
    }
    state.node.read_barrier(Consistency::Linearizable).await?;
    Ok(ready(state))
}

/// Waits until an event says `queue` may have deliverable messages; false
/// when `deadline` passes first.
async fn wait_for_ready(
    events: &mut tokio::sync::broadcast::Receiver<dsync_engine::sm_store::EventRecord>,
    queue: &str,
    deadline: tokio::time::Instant,
) -> bool {
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => return false,
            // Missed events: just look at the state again.
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => return true,
            Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => return false,
            Ok(Ok(record)) => {
                let wakes = record.events.iter().any(|event| match event {
                    Event::QueueProduced { queue: q, .. } | Event::QueueReady { queue: q, .. } => q == queue,
                    Event::QueueDeadLettered { dead_letter_queue, .. } => dead_letter_queue == queue,
                    _ => false,
                });
                if wakes {
                    return true;
                }
            }
        }
    }
}

/// Body of `POST /queue/ack`.
#[derive(Deserialize)]
pub struct AckBody {
    queue: String,
    ids: Vec<String>,
}

/// `POST /queue/ack`: removes processed messages.
pub async fn ack(State(state): State<AppState>, JsonBody(body): JsonBody<AckBody>) -> Result<Json<Value>, ApiError> {
    check_ids(&body.queue, &body.ids)?;
    match state.node.write(Command::QueueAck { queue: body.queue.clone(), ids: body.ids }).await?.1 {
        Response::QueueAcked { acked } => Ok(Json(json!({ "acked": acked }))),
        Response::QueueNotFound => Err(no_queue(&body.queue)),
        other => Err(ApiError::internal(format!("ack answered {other:?}"))),
    }
}

/// Body of `POST /queue/nack`.
#[derive(Deserialize)]
pub struct NackBody {
    queue: String,
    ids: Vec<String>,
    #[serde(default)]
    delay_ms: u64,
}

/// `POST /queue/nack`: returns in-flight messages now or after `delay_ms`.
pub async fn nack(State(state): State<AppState>, JsonBody(body): JsonBody<NackBody>) -> Result<Json<Value>, ApiError> {
    check_ids(&body.queue, &body.ids)?;
    if body.delay_ms > VISIBILITY_MS_MAX {
        return Err(ApiError::bad_request(format!("delay_ms must be 0..={VISIBILITY_MS_MAX}")));
    }
    let command = Command::QueueNack { queue: body.queue.clone(), ids: body.ids, delay_ms: body.delay_ms };
    match state.node.write(command).await?.1 {
        Response::QueueRequeued { requeued } => Ok(Json(json!({ "requeued": requeued }))),
        Response::QueueNotFound => Err(no_queue(&body.queue)),
        other => Err(ApiError::internal(format!("nack answered {other:?}"))),
    }
}

fn check_ids(queue: &str, ids: &[String]) -> Result<(), ApiError> {
    check_name("queue", queue)?;
    if ids.is_empty() {
        return Err(ApiError::bad_request("`ids` is empty"));
    }
    if ids.len() > CONSUME_MAX as usize {
        return Err(ApiError::bad_request(format!("at most {CONSUME_MAX} ids per request")));
    }
    match ids.iter().find(|id| queue::parse_message_id(id).is_none()) {
        Some(bad) => Err(ApiError::bad_request(format!("{bad:?} is not a message id"))),
        None => Ok(()),
    }
}

fn no_queue(queue: &str) -> ApiError {
    ApiError::not_found(format!("no queue named {queue:?}"))
}

/// Query of `GET /queue/stats`.
#[derive(Deserialize)]
pub struct StatsQuery {
    queue: Option<String>,
    #[serde(default)]
    consistency: Consistency,
}

/// `GET /queue/stats?queue=`: one queue's depths, totals and placement, or
/// every queue's.
pub async fn stats(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<StatsQuery>,
) -> Result<Json<Value>, ApiError> {
    if let Some(queue) = &query.queue {
        check_name("queue", queue)?;
    }
    state.node.read_barrier(query.consistency).await?;
    let ring = Ring::new(state.node.member_names(), Ring::DEFAULT_VNODES);
    let with_placement = |stats: queue::QueueStats| {
        let mut value = json!(stats);
        let replicas = ring.replicas(&stats.queue, REPLICAS);
        value["placement"] = json!({"primary": replicas.first(), "replicas": replicas});
        value
    };
    match query.queue {
        Some(name) => match state.node.read_state(|_, store| queue::stats(store, &name)) {
            Some(stats) => Ok(Json(with_placement(stats))),
            None => Err(no_queue(&name)),
        },
        None => {
            let all = state.node.read_state(|_, store| queue::all_stats(store));
            Ok(Json(json!({ "queues": all.into_iter().map(with_placement).collect::<Vec<_>>() })))
        }
    }
}
