//! The HTTP surface: metrics, health, the scores API and the status page.
//! Read-only: GET and HEAD only (others get 405), no request bodies (413),
//! bounded request heads and connections (see [`server`]), and an optional
//! bearer token for the data endpoints (see [`guard`]).

mod api;
mod chart;
mod guard;
mod server;
mod status_page;

pub use crate::config::{HttpSettings, Secret};
pub use guard::Access;
pub use server::serve;

use crate::state::Reader;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

pub use status_page::escape_html;

pub fn router(state: Reader, access: Access) -> Router {
    Router::new()
        .route("/", get(status_page::page))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/scores", get(api::scores))
        .route("/api/v1/scores/{vendor}", get(api::vendor_score))
        .route("/api/v1/scores/{vendor}/history", get(api::vendor_history))
        .route("/api/v1/status", get(api::status))
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(access, guard::guard))
        .with_state(state)
}

async fn metrics(State(state): State<Reader>) -> impl IntoResponse {
    let body = state.render_metrics();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Reader>) -> impl IntoResponse {
    match state.check_ready() {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(r) => (StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", r.describe())),
    }
}
