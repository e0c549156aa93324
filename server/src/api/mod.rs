//! The public HTTP API (the contract in `shared/API.md`): one module per
//! section, all handlers thin: parse and validate, call the engine, shape the
//! JSON answer.

mod cache;
mod cluster;
pub mod error;
pub mod events;
mod extract;
mod locks;
mod metrics;
mod queue;
mod raft;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use dsync_engine::Node;

use crate::cache::Cache;
use crate::metrics::{track_http, Metrics};
use error::ApiError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The Raft member this server fronts.
    pub node: Arc<Node>,
    /// Metric families.
    pub metrics: Arc<Metrics>,
    /// Largest `data`/message/value, in encoded JSON bytes.
    pub max_value_bytes: usize,
    /// Deliveries after which a message produced through this node is
    /// dead-lettered.
    pub max_deliveries: u32,
    /// `leader.changed` events this node observes, for `/events`.
    pub leader_changes: tokio::sync::broadcast::Sender<serde_json::Value>,
    /// This node's side of the coherent cache.
    pub cache: Arc<Cache>,
}

/// Room for the fields around a maximal value in a request body.
const BODY_OVERHEAD_BYTES: usize = 64 << 10;

/// Longest name (resource, owner, queue, key, node id) in bytes.
pub const NAME_BYTES_MAX: usize = 256;

/// The whole application: public routes, `/internal/` routes, fallbacks.
pub fn router(state: AppState, enable_metrics: bool) -> Router {
    let mut public = Router::new()
        .route("/health", get(raft::health))
        .route("/raft/leader", get(raft::leader))
        .route("/raft/log", get(raft::log))
        .route("/raft/append", post(raft::append))
        .route("/raft/heartbeat", post(raft::heartbeat))
        .route("/cluster", get(cluster::show))
        .route("/cluster/add", post(cluster::add))
        .route("/cluster/remove", post(cluster::remove))
        .route("/locks", get(locks::list))
        .route("/locks/acquire", post(locks::acquire))
        .route("/locks/release", post(locks::release))
        .route("/locks/renew", post(locks::renew))
        .route("/locks/wait_for", get(locks::wait_for))
        .route("/queue/produce", post(queue::produce))
        .route("/queue/consume", post(queue::consume))
        .route("/queue/ack", post(queue::ack))
        .route("/queue/nack", post(queue::nack))
        .route("/queue/stats", get(queue::stats))
        .route("/cache/get", get(cache::get))
        .route("/cache/put", post(cache::put))
        .route("/cache/invalidate", post(cache::invalidate))
        .route("/cache/delete", post(cache::delete))
        .route("/cache/fetch", get(cache::fetch))
        .route("/cache/state", get(cache::show))
        .route("/internal/cache/applied", get(cache::applied))
        .route("/events", get(events::stream));
    if enable_metrics {
        public = public.route("/metrics", get(metrics::show));
    }
    let public = public
        .layer(DefaultBodyLimit::max(state.max_value_bytes + BODY_OVERHEAD_BYTES))
        .fallback(no_route)
        .method_not_allowed_fallback(no_route)
        .with_state(state.clone());
    public
        .merge(dsync_engine::rpc::router(state.node.clone()))
        .layer(axum::middleware::from_fn_with_state(state.metrics.clone(), track_http))
}

/// Unknown routes, and known routes with the wrong method, are `not_found`.
async fn no_route(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route {method} {}", uri.path()))
}

/// Checks a name (resource, owner, queue, key, node id) against the contract.
pub fn check_name(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() {
        return Err(ApiError::bad_request(format!("{field} must not be empty")));
    }
    if value.len() > NAME_BYTES_MAX {
        return Err(ApiError::bad_request(format!("{field} is {} bytes; the limit is {NAME_BYTES_MAX}", value.len())));
    }
    Ok(())
}
