//! Cache routes: `/cache/get`, `/cache/put`, `/cache/invalidate`,
//! `/cache/delete`, `/cache/fetch`, `/cache/state`, and the internal
//! `/internal/cache/applied` a put uses to learn that a former holder has
//! dropped its copy. The protocol itself is in `crate::cache`.

use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::extract::{JsonBody, QueryParams};
use super::{check_name, AppState};
use crate::cache::GetReply;

/// Longest wait `/internal/cache/applied` grants.
const APPLIED_WAIT_MAX: Duration = Duration::from_secs(5);

/// Query of the routes that name one key.
#[derive(Debug, Deserialize)]
pub struct KeyQuery {
    key: String,
    version: Option<u64>,
}

/// A get's or fetch's answer; the value is passed through as stored.
#[derive(Serialize)]
struct LineBody<'a> {
    key: &'a str,
    value: &'a RawValue,
    state: &'static str,
    hit: bool,
    version: u64,
}

fn line_body(key: &str, reply: &GetReply) -> Result<Response, ApiError> {
    let value = RawValue::from_string(reply.value.to_string())
        .map_err(|e| ApiError::internal(format!("stored value of {key:?} is not JSON: {e}")))?;
    let state = reply.state.map_or("I", |s| s.as_str());
    Ok(Json(LineBody { key, value: &value, state, hit: reply.hit, version: reply.version }).into_response())
}

/// `GET /cache/get?key=k`.
pub async fn get(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<KeyQuery>,
) -> Result<Response, ApiError> {
    check_name("key", &query.key)?;
    let reply = state.cache.get(&query.key).await?;
    line_body(&query.key, &reply)
}

/// `GET /cache/fetch?key=k[&version=v]`: a peer's read of this node's line.
pub async fn fetch(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<KeyQuery>,
) -> Result<Response, ApiError> {
    check_name("key", &query.key)?;
    let reply = state.cache.fetch(&query.key, query.version).await?;
    line_body(&query.key, &reply)
}

/// The `key` of a body, checked.
fn key_of(body: &Map<String, Value>) -> Result<String, ApiError> {
    let key = match body.get("key") {
        Some(Value::String(key)) => key.clone(),
        Some(_) => return Err(ApiError::bad_request("`key` must be a string")),
        None => return Err(ApiError::bad_request("missing field `key`")),
    };
    check_name("key", &key)?;
    Ok(key)
}

/// `POST /cache/put {"key","value"}`.
pub async fn put(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let key = key_of(&body)?;
    let value = body.get("value").ok_or_else(|| ApiError::bad_request("missing field `value`"))?.to_string();
    if value.len() > state.max_value_bytes {
        return Err(ApiError::too_large(format!(
            "value is {} bytes encoded; the limit is {}",
            value.len(),
            state.max_value_bytes
        )));
    }
    let applied = state.cache.put(&key, value).await?;
    Ok(Json(json!({"key": key, "version": applied.version, "state": "M"})))
}

/// `POST /cache/invalidate {"key"}`.
pub async fn invalidate(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let key = key_of(&body)?;
    state.cache.invalidate(&key).await?;
    Ok(Json(json!({"key": key, "invalidated": true})))
}

/// `POST /cache/delete {"key"}`.
pub async fn delete(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<Json<Value>, ApiError> {
    let key = key_of(&body)?;
    state.cache.delete(&key).await?;
    Ok(Json(json!({"key": key, "deleted": true})))
}

/// Query of `/cache/state`.
#[derive(Debug, Deserialize)]
pub struct StateQuery {
    key: Option<String>,
}

/// `GET /cache/state[?key=k]`: this node's lines (most recently used
/// first), its lease and its counters.
pub async fn show(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<StateQuery>,
) -> Result<Json<Value>, ApiError> {
    if let Some(key) = &query.key {
        check_name("key", key)?;
    }
    let cache = &state.cache;
    let (capacity, size, lines) = {
        let local = cache.lines().lock();
        let lines: Vec<Value> = local
            .iter()
            .filter(|(key, _)| query.key.as_deref().is_none_or(|wanted| wanted == key.as_str()))
            .map(|(key, line)| json!({"key": key, "state": line.state.as_str(), "version": line.version}))
            .collect();
        (local.capacity(), local.len(), lines)
    };
    Ok(Json(json!({
        "node_id": state.node.status().node_id,
        "capacity": capacity,
        "size": size,
        "backing": cache.backing().kind(),
        "lease_valid": cache.lease().is_valid(),
        "lease_remaining_ms": cache.lease().remaining().as_millis() as u64,
        "lines": lines,
        "metrics": state.metrics.cache.json(),
    })))
}

/// Query of `/internal/cache/applied`.
#[derive(Debug, Deserialize)]
pub struct AppliedQuery {
    index: u64,
    wait_ms: Option<u64>,
}

/// `GET /internal/cache/applied?index=i&wait_ms=t`: 200 once this node has
/// applied entry `i` (so its lines reflect it), 408 if that took too long.
pub async fn applied(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<AppliedQuery>,
) -> Result<Json<Value>, ApiError> {
    let wait = Duration::from_millis(query.wait_ms.unwrap_or(0)).min(APPLIED_WAIT_MAX);
    if state.node.wait_applied(query.index, wait).await {
        Ok(Json(json!({"applied": query.index})))
    } else {
        Err(ApiError::timeout(format!("entry {} not applied within {wait:?}", query.index)))
    }
}
