//! `/api/v1/scores` and `/api/v1/scores/{vendor}`: explained scores as JSON.
//! `?at=RFC3339` answers as of another time (backtesting).
//! `/api/v1/scores/{vendor}/history`: the score at each step of a range.
//! `/api/v1/status`: readiness and event counts, without scoring anything.

use crate::engine::MAX_HISTORY_POINTS;
use crate::event::{parse_step, parse_when, Span, Timestamp};
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

/// `?from&to&step` of a history: times as `2022-01-01`, RFC 3339 or `now`;
/// the step as `1d`, `7d`, `12h`.
#[derive(Debug, Deserialize)]
pub struct Range {
    from: Option<String>,
    to: Option<String>,
    step: Option<String>,
}

/// Why a history's range cannot be answered.
pub enum RangeError {
    /// The request asks for a range that cannot be drawn: a 400.
    Invalid(BadRequest),
    /// The first event held is not known while the scores are rebuilt: a 503.
    Rebuilding(Rebuilding),
}

impl From<Rebuilding> for RangeError {
    fn from(r: Rebuilding) -> Self {
        RangeError::Rebuilding(r)
    }
}

impl IntoResponse for RangeError {
    fn into_response(self) -> Response {
        match self {
            RangeError::Invalid(e) => e.into_response(),
            RangeError::Rebuilding(r) => rebuilding(r),
        }
    }
}

/// A history's range, resolved: defaults are the first event held (its
/// day), `now`, and a week, or as many whole weeks as keep the history
/// within [`MAX_HISTORY_POINTS`].
pub fn resolve_range(
    state: &Reader,
    from: Option<&str>,
    to: Option<&str>,
    step: Option<&str>,
    now: Timestamp,
) -> Result<(Timestamp, Timestamp, Span), RangeError> {
    let invalid = |e: String| RangeError::Invalid(BadRequest(e));
    let to = to.map(parse_when).transpose().map_err(|e| invalid(format!("to: {e}")))?.unwrap_or(now);
    let step = step.map(parse_step).transpose().map_err(|e| invalid(format!("step: {e}")))?;
    let from = match from.map(parse_when).transpose().map_err(|e| invalid(format!("from: {e}")))? {
        Some(t) => t,
        None => {
            let first = state.first_event_at()?.unwrap_or(to);
            // Midnight of the first event's day, unless that day begins
            // before the first representable instant (1677-09-21).
            first.floor_to(Span::DAY).unwrap_or(first)
        }
    };
    if to < from {
        return Err(invalid("to: before from".into()));
    }
    let span = i128::from(to.nanos()) - i128::from(from.nanos());
    let step = step.unwrap_or_else(|| {
        let week = i128::from(Span::WEEK.nanos());
        let weeks = span / (week * i128::from(MAX_HISTORY_POINTS - 1)) + 1;
        Span::from_nanos((weeks * week).min(i128::from(i64::MAX)) as i64)
    });
    let points = span / i128::from(step.nanos()) + 1;
    if points > i128::from(MAX_HISTORY_POINTS) {
        return Err(invalid(format!(
            "{points} points from `from` to `to` at this step; at most {MAX_HISTORY_POINTS}: use a longer step"
        )));
    }
    Ok((from, to, step))
}

/// `/api/v1/scores/{vendor}/history`: the score and its components as of
/// each step, the same numbers as `replay --at` at those times.
pub async fn vendor_history(
    State(state): State<Reader>,
    Path(vendor): Path<String>,
    Query(q): Query<Range>,
) -> Response {
    // Scoring a long range under the board's lock is CPU work: off the tokio workers.
    tokio::task::spawn_blocking(move || history_answer(&state, vendor, &q))
        .await
        .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "the history could not be computed"))
}

fn history_answer(state: &Reader, vendor: String, q: &Range) -> Response {
    let range = resolve_range(state, q.from.as_deref(), q.to.as_deref(), q.step.as_deref(), Timestamp::now());
    let (from, to, step) = match range {
        Ok(range) => range,
        Err(e) => return e.into_response(),
    };
    match state.history(&vendor, from, to, step) {
        Ok(Some(points)) => {
            let points: Vec<_> = points
                .iter()
                .map(|p| json!({ "at": p.at, "score": p.score.score, "pressure": p.score.pressure, "components": p.score.component_map() }))
                .collect();
            Json(json!({ "vendor": vendor, "from": from, "to": to, "step_seconds": step.whole_seconds(), "points": points }))
                .into_response()
        }
        Ok(None) => error(StatusCode::NOT_FOUND, "unknown vendor; see /api/v1/scores for the catalog"),
        Err(r) => rebuilding(r),
    }
}
