//! The HTTP surface: metrics, health, the scores API and the status page.
//! Read-only: GET and HEAD only (others get 405), no request bodies (413),
//! bounded request heads, connections and deadlines (see [`server`]), an
//! optional bearer token for the data endpoints and another for `/metrics`
//! (see [`guard`]), and security headers on every response (see
//! [`headers`]). The probes may have a listener of their own
//! (`http.probe_listen`), which no client of the API port can starve.

mod api;
mod chart;
mod deadline;
mod guard;
mod headers;
pub(crate) mod present;
mod server;
mod status_page;

pub use crate::config::{HttpSettings, Secret};
pub use guard::Access;
pub use headers::SECURITY_HEADERS;

use crate::state::Reader;
use anyhow::Context;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use futures_util::FutureExt;
use server::Limits;
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;

pub use present::escape_html;

pub fn router(state: Reader, access: Access) -> Router {
    Router::new()
        .route("/", get(status_page::page))
        .route("/metrics", get(metrics))
        .route("/api/v1/scores", get(api::scores))
        .route("/api/v1/scores/{vendor}", get(api::vendor_score))
        .route("/api/v1/scores/{vendor}/history", get(api::vendor_history))
        .route("/api/v1/status", get(api::status))
        .merge(probe_routes())
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(access, guard::guard))
        .layer(axum::middleware::map_response(headers::secure))
        .with_state(state)
}

/// The probe listener's router: `/healthz` and `/readyz`, nothing else.
pub fn probe_router(state: Reader) -> Router {
    probe_routes()
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(Access::default(), guard::guard))
        .layer(axum::middleware::map_response(headers::secure))
        .with_state(state)
}

fn probe_routes() -> Router<Reader> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

/// The bound listeners: the API's and, if configured, the probes' own.
pub struct Listeners {
    api: TcpListener,
    probes: Option<TcpListener>,
}

impl Listeners {
    /// Binds `http.listen` and `http.probe_listen`.
    pub async fn bind(settings: &HttpSettings) -> anyhow::Result<Self> {
        let api = bind(&settings.listen, "http.listen").await?;
        let probes = match &settings.probe_listen {
            Some(addr) => Some(bind(addr, "http.probe_listen").await?),
            None => None,
        };
        Ok(Self { api, probes })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.api.local_addr().expect("a bound listener has an address")
    }

    pub fn probe_addr(&self) -> Option<SocketAddr> {
        self.probes.as_ref().map(|l| l.local_addr().expect("a bound listener has an address"))
    }
}

async fn bind(addr: &str, setting: &str) -> anyhow::Result<TcpListener> {
    let addr: SocketAddr = addr.parse().with_context(|| setting.to_owned())?;
    TcpListener::bind(addr).await.with_context(|| format!("Failed to listen on {addr} ({setting})"))
}

/// Serves the API (and the probes, on their own listener if bound) until
/// `shutdown` completes.
pub async fn serve(
    listeners: Listeners,
    state: Reader,
    access: Access,
    settings: &HttpSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let shutdown = shutdown.boxed().shared();
    let api = server::serve(listeners.api, router(state.clone(), access), Limits::api(settings), shutdown.clone());
    let Some(probes) = listeners.probes else { return api.await };
    let probes = server::serve(probes, probe_router(state), Limits::probes(settings), shutdown);
    let (api, probes) = tokio::join!(api, probes);
    api.and(probes)
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
