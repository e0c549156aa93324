//! The `/internal/` HTTP routes through which nodes talk to each other:
//! Raft RPCs (`/internal/raft/<group>/{append,vote,snapshot}`) and forwarded
//! client requests (`/internal/forward/<group>`). Bodies are bincode.
//!
//! These routes are not part of the public API contract.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec;
use crate::forward::ForwardRequest;
use crate::node::Node;
use crate::types::GroupId;

/// Largest internal request body: AppendEntries batches of big entries and
/// snapshot chunks (3 MiB by default) must fit.
const INTERNAL_BODY_BYTES_MAX: usize = 512 << 20;

/// The router of the internal routes, to be merged into the public server.
pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/internal/raft/{group}/append", post(append))
        .route("/internal/raft/{group}/vote", post(vote))
        .route("/internal/raft/{group}/snapshot", post(snapshot))
        .route("/internal/forward/{group}", post(forward))
        .layer(DefaultBodyLimit::max(INTERNAL_BODY_BYTES_MAX))
        .with_state(node)
}

async fn append(State(node): State<Arc<Node>>, Path(group): Path<GroupId>, body: Bytes) -> Response {
    match decode_for(&node, group, &body) {
        Ok(request) => reply(&node.raft().append_entries(request).await),
        Err(rejection) => rejection,
    }
}

async fn vote(State(node): State<Arc<Node>>, Path(group): Path<GroupId>, body: Bytes) -> Response {
    match decode_for(&node, group, &body) {
        Ok(request) => reply(&node.raft().vote(request).await),
        Err(rejection) => rejection,
    }
}

async fn snapshot(State(node): State<Arc<Node>>, Path(group): Path<GroupId>, body: Bytes) -> Response {
    match decode_for(&node, group, &body) {
        Ok(request) => reply(&node.raft().install_snapshot(request).await),
        Err(rejection) => rejection,
    }
}

async fn forward(State(node): State<Arc<Node>>, Path(group): Path<GroupId>, body: Bytes) -> Response {
    match decode_for::<ForwardRequest>(&node, group, &body) {
        Ok(request) => reply(&node.handle_forward(request).await),
        Err(rejection) => rejection,
    }
}

/// Decodes a request addressed to `group`, or the HTTP rejection to send.
fn decode_for<T: DeserializeOwned>(node: &Node, group: GroupId, body: &[u8]) -> Result<T, Response> {
    if group != node.group() {
        return Err((StatusCode::NOT_FOUND, format!("this node does not serve group {group}")).into_response());
    }
    codec::decode(body).map_err(|e| (StatusCode::BAD_REQUEST, format!("undecodable request: {e}")).into_response())
}

fn reply<T: Serialize>(value: &T) -> Response {
    match codec::encode(value) {
        Ok(bytes) => bytes.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode an internal reply");
            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
    }
}
