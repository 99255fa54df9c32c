//! `/api/v1/scores` and `/api/v1/scores/{vendor}`: explained scores as JSON.
//! `?at=RFC3339` answers as of another time (backtesting).
//! `/api/v1/status`: readiness and event counts, without scoring anything.

use crate::event::Timestamp;
use crate::state::{Reader, Rebuilding};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize)]
pub struct AsOf {
    at: Option<String>,
}

impl AsOf {
    fn resolve(&self) -> Result<Timestamp, BadRequest> {
        match &self.at {
            None => Ok(Timestamp::now()),
            Some(s) => s.parse().map_err(|e: String| BadRequest(format!("at: {e}"))),
        }
    }
}

/// A request the API cannot answer; becomes a 400 with a JSON message.
pub struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        error(StatusCode::BAD_REQUEST, &self.0)
    }
}

pub async fn scores(State(state): State<Reader>, Query(q): Query<AsOf>) -> Response {
    match q.resolve() {
        Ok(at) => match state.report(at) {
            Ok(report) => Json(report).into_response(),
            Err(r) => rebuilding(r),
        },
        Err(e) => e.into_response(),
    }
}

pub async fn vendor_score(State(state): State<Reader>, Path(vendor): Path<String>, Query(q): Query<AsOf>) -> Response {
    let at = match q.resolve() {
        Ok(at) => at,
        Err(e) => return e.into_response(),
    };
    match state.explain(&vendor, at) {
        Ok(Some(x)) => Json(x).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "unknown vendor; see /api/v1/scores for the catalog"),
        Err(r) => rebuilding(r),
    }
}

/// Readiness and counts only: cheap at any state size, for polling.
pub async fn status(State(state): State<Reader>) -> Response {
    match state.counts() {
        Ok((summary, events_held)) => {
            Json(json!({ "ready": true, "summary": summary, "events_held": events_held })).into_response()
        }
        Err(r) => rebuilding(r),
    }
}

/// The answer of every API route while the scores are being rebuilt: 503,
/// `Retry-After`, and how far the rebuild has got.
pub fn rebuilding(r: Rebuilding) -> Response {
    let body = json!({ "error": r.describe(), "ready": false, "rebuilding": r });
    (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], Json(body)).into_response()
}

pub async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such resource; try /api/v1/scores, /api/v1/status, /metrics or /")
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}
