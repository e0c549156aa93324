//! Membership routes: `/cluster`, `/cluster/add`, `/cluster/remove`.

use axum::extract::State;
use axum::Json;
use dsync_engine::{node_id_from_name, ClusterView, NodeId};
use serde::Deserialize;

use super::error::ApiError;
use super::extract::JsonBody;
use super::{check_name, AppState};

/// `GET /cluster`: members, voters and replication progress.
pub async fn show(State(state): State<AppState>) -> Json<ClusterView> {
    Json(state.node.cluster().await)
}

/// Body of `POST /cluster/add`.
#[derive(Deserialize)]
pub struct AddBody {
    node_id: String,
    addr: String,
}

/// `POST /cluster/add`: joins as learner, catches up, becomes voter.
pub async fn add(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<AddBody>,
) -> Result<Json<ClusterView>, ApiError> {
    let id = parse_node(&body.node_id)?;
    let addr = body.addr.trim().trim_end_matches('/').to_string();
    if !(addr.starts_with("http://") || addr.starts_with("https://")) || addr.len() <= "http://".len() {
        return Err(ApiError::bad_request(format!("addr must be a URL like http://host:port, got {:?}", body.addr)));
    }
    Ok(Json(state.node.add_node(id, addr).await?))
}

/// Body of `POST /cluster/remove`.
#[derive(Deserialize)]
pub struct RemoveBody {
    node_id: String,
}

/// `POST /cluster/remove`: the node leaves the membership.
pub async fn remove(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<RemoveBody>,
) -> Result<Json<ClusterView>, ApiError> {
    let id = parse_node(&body.node_id)?;
    Ok(Json(state.node.remove_node(id).await?))
}

fn parse_node(name: &str) -> Result<NodeId, ApiError> {
    check_name("node_id", name)?;
    node_id_from_name(name)
        .ok_or_else(|| ApiError::bad_request(format!("node_id must be nodeN with N >= 1, got {name:?}")))
}
