//! Health and Raft routes: `/health`, `/raft/leader`, `/raft/log`,
//! `/raft/append`, `/raft/heartbeat`.

use axum::extract::State;
use axum::Json;
use dsync_engine::{node_name, Consistency, NodeId, Role};
use dsync_statemachine::Command;
use openraft::EntryPayload;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::{JsonBody, QueryParams};
use super::AppState;

/// `GET /health`: this node's role and progress; `degraded` without a leader,
/// or when this node leads but has not heard from a quorum for an election timeout.
pub async fn health(State(state): State<AppState>) -> Json<Value> {
    let status = state.node.status();
    // A leader cut off from its quorum keeps its role until it hears of a
    // newer term; it is not healthy once a follower would have timed out.
    let quorum_window = state.node.election_timeout().as_millis() as u64;
    let lost_quorum =
        status.role == Role::Leader && status.millis_since_quorum_ack.is_some_and(|ms| ms > quorum_window);
    let health =
        if status.leader.is_some() && status.role != Role::Shutdown && !lost_quorum { "healthy" } else { "degraded" };
    Json(json!({
        "status": health,
        "node_id": status.node_id,
        "role": status.role,
        "term": status.term,
        "leader": status.leader,
        "commit_index": status.commit_index,
        "applied_index": status.applied_index,
    }))
}

/// `GET /raft/leader` (also the answer of `/raft/heartbeat`).
pub async fn leader(State(state): State<AppState>) -> Json<Value> {
    let leader = state.node.leader();
    Json(json!({
        "leader": leader.map(node_name),
        "leader_addr": leader.and_then(|id| state.node.addr_of(id)),
        "term": state.node.status().term,
    }))
}

/// `POST /raft/heartbeat`: the leader sends a heartbeat round now.
pub async fn heartbeat(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.node.heartbeat().await?;
    Ok(leader(State(state)).await)
}

/// Body of `POST /raft/append`.
#[derive(Deserialize)]
pub struct AppendBody {
    data: Value,
}

/// `POST /raft/append`: an opaque application entry; answers once committed.
pub async fn append(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<AppendBody>,
) -> Result<Json<Value>, ApiError> {
    let data = body.data.to_string();
    if data.len() > state.max_value_bytes {
        return Err(ApiError::too_large(format!(
            "data is {} bytes encoded; the limit is {}",
            data.len(),
            state.max_value_bytes
        )));
    }
    let (log_id, _) = state.node.write(Command::Append { data }).await?;
    Ok(Json(json!({"index": log_id.index, "term": log_id.leader_id.term})))
}

/// `membership voters=[node1,node2] learners=[node4]`.
fn membership_summary(membership: &openraft::Membership<NodeId, openraft::BasicNode>) -> String {
    let names = |ids: &mut dyn Iterator<Item = NodeId>| ids.map(node_name).collect::<Vec<_>>().join(",");
    format!(
        "membership voters=[{}] learners=[{}]",
        names(&mut membership.voter_ids()),
        names(&mut membership.learner_ids())
    )
}

/// Query of `GET /raft/log`.
#[derive(Deserialize)]
pub struct LogQuery {
    from: Option<u64>,
    limit: Option<u64>,
    #[serde(default = "local")]
    consistency: Consistency,
}

fn local() -> Consistency {
    Consistency::Local
}

/// Most entries one `/raft/log` call returns.
const LOG_LIMIT_MAX: u64 = 1000;

/// `GET /raft/log?from=&limit=`: entries of this node's log. Entries before
/// `first_index` were compacted into a snapshot.
pub async fn log(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<LogQuery>,
) -> Result<Json<Value>, ApiError> {
    state.node.read_barrier(query.consistency).await?;
    let reader = state.node.log();
    let first_index = reader.first_index();
    let from = query.from.unwrap_or(first_index).max(first_index);
    let limit = query.limit.unwrap_or(100).min(LOG_LIMIT_MAX);
    let entries = reader
        .entries(from, from.saturating_add(limit))
        .map_err(|e| ApiError::internal(format!("cannot read the log: {e}")))?;
    let entries: Vec<Value> = entries
        .iter()
        .map(|entry| {
            let mut view = json!({"index": entry.log_id.index, "term": entry.log_id.leader_id.term});
            match &entry.payload {
                EntryPayload::Blank => {
                    view["kind"] = json!("blank");
                    view["command"] = json!("blank");
                }
                EntryPayload::Membership(m) => {
                    view["kind"] = json!("membership");
                    view["command"] = json!(membership_summary(m));
                }
                EntryPayload::Normal(request) => {
                    view["kind"] = json!("command");
                    view["command"] = json!(request.command.summary());
                    if let Command::Append { data } = &request.command {
                        view["data"] = serde_json::from_str(data).unwrap_or(Value::Null);
                    }
                    view["time_ms"] = json!(request.time_ms);
                }
            }
            view
        })
        .collect();
    let status = state.node.status();
    Ok(Json(json!({
        "entries": entries,
        "first_index": first_index,
        "last_index": status.last_log_index,
        "committed": status.commit_index,
    })))
}
