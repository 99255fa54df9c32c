//! Request checks in front of every route: the surface is read-only, so a
//! request with a body is refused (413) before any handler runs; and when a
//! token is configured, the data endpoints (`/api/*` and the status page)
//! require it (401); when a metrics token is configured, `/metrics`
//! requires that one. The probes stay open.

use crate::config::{HttpSettings, Secret};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// What the guard enforces.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Required on the data endpoints (`/api/*`, `/`).
    pub token: Option<Arc<Secret>>,
    /// Required on `/metrics`.
    pub metrics_token: Option<Arc<Secret>>,
}

impl Access {
    /// The tokens `settings` configure (reading their files).
    pub fn from_settings(settings: &HttpSettings) -> anyhow::Result<Self> {
        Ok(Self { token: settings.api_token()?.map(Arc::new), metrics_token: settings.metrics_token()?.map(Arc::new) })
    }

    /// The token a request for `path` must carry, if any.
    fn required(&self, path: &str) -> Option<&Secret> {
        if needs_token(path) {
            self.token.as_deref()
        } else if path == "/metrics" {
            self.metrics_token.as_deref()
        } else {
            None
        }
    }
}

pub async fn guard(State(access): State<Access>, request: Request, next: Next) -> Response {
    if has_body(&request) {
        return (StatusCode::PAYLOAD_TOO_LARGE, "requests to chiprisk carry no body\n").into_response();
    }
    if let Some(token) = access.required(request.uri().path()) {
        if !bearer(&request).is_some_and(|t| token.matches(t)) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer realm=\"chiprisk\"")],
                "a bearer token is required\n",
            )
                .into_response();
        }
    }
    next.run(request).await
}

fn has_body(request: &Request) -> bool {
    let headers = request.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()) != Some(0))
}

fn needs_token(path: &str) -> bool {
    path == "/" || path == "/api" || path.starts_with("/api/")
}

fn bearer(request: &Request) -> Option<&[u8]> {
    let value = request.headers().get(header::AUTHORIZATION)?.as_bytes();
    let scheme = value.get(..7)?;
    scheme.eq_ignore_ascii_case(b"bearer ").then(|| &value[7..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_paths_need_the_token_and_probes_do_not() {
        for p in ["/", "/api", "/api/v1/scores", "/api/v1/scores/nvidia", "/api/v1/status"] {
            assert!(needs_token(p), "{p}");
        }
        for p in ["/metrics", "/healthz", "/readyz", "/apix", "/favicon.ico"] {
            assert!(!needs_token(p), "{p}");
        }
    }

    #[test]
    fn each_token_guards_its_own_paths() {
        let access =
            Access { token: Some(Arc::new(Secret::new("api"))), metrics_token: Some(Arc::new(Secret::new("metrics"))) };
        let token = |p| access.required(p).map(|s| s.matches(b"api"));
        assert_eq!(token("/api/v1/scores"), Some(true));
        assert_eq!(token("/metrics"), Some(false));
        assert_eq!(token("/metrics/"), None);
        assert_eq!(token("/healthz"), None);
        assert_eq!(token("/readyz"), None);
    }
}
