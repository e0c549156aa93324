//! The contract's error body and status codes, and how engine errors map
//! onto them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use dsync_engine::{node_name, EngineError};
use serde_json::json;

/// An error answered to a client as
/// `{"error": {"code": "...", "message": "..."}}` with the matching status.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// The leader's name, for `unavailable` (a hint where to retry).
    leader: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), leader: None }
    }

    /// 400 `bad_request`: malformed JSON, missing or invalid field.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 404 `not_found`: no such key, queue, message or route.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409 `conflict`: the lock is taken and the caller did not wait.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 409 `deadlock`: the caller was chosen as a deadlock victim.
    pub fn deadlock(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "deadlock", message)
    }

    /// 408 `timeout`: a blocking call ran out of time.
    pub fn timeout(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::REQUEST_TIMEOUT, "timeout", message)
    }

    /// The contract's error code (`bad_request`, `conflict`, ...).
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// 413 `too_large`: body, key or value above the configured limit.
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
    }

    /// 503 `unavailable`: no leader or no quorum; retryable.
    pub fn unavailable(message: impl Into<String>, leader: Option<String>) -> ApiError {
        ApiError { leader, ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message) }
    }

    /// 500 `internal`: a bug, logged with its cause.
    pub fn internal(message: impl Into<String>) -> ApiError {
        let message = message.into();
        tracing::error!(%message, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        match e {
            EngineError::Unavailable { reason, leader } => ApiError::unavailable(reason, leader.map(node_name)),
            EngineError::NotLeader { leader } => {
                ApiError::unavailable("no leader reachable right now", leader.map(node_name))
            }
            EngineError::BadRequest(message) => ApiError::bad_request(message),
            EngineError::Internal(message) => ApiError::internal(message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(leader) = self.leader {
            error["leader"] = json!(leader);
        }
        (self.status, Json(json!({ "error": error }))).into_response()
    }
}
