//! `GET /metrics`: JSON by default; Prometheus text with
//! `?format=prometheus` or `Accept: text/plain`.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::error::ApiError;
use super::extract::QueryParams;
use super::AppState;

/// Query of `GET /metrics`.
#[derive(Deserialize)]
pub struct MetricsQuery {
    format: Option<String>,
}

/// `GET /metrics`.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(query): QueryParams<MetricsQuery>,
) -> Result<Response, ApiError> {
    let wants_text =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|accept| accept.contains("text/plain"));
    let prometheus = match query.format.as_deref() {
        Some("prometheus") => true,
        Some("json") => false,
        Some(other) => return Err(ApiError::bad_request(format!("format must be json or prometheus, got {other:?}"))),
        None => wants_text,
    };
    if prometheus {
        let text = state.metrics.prometheus_text(&state.node);
        Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
    } else {
        Ok(Json(state.metrics.json(&state.node)).into_response())
    }
}
