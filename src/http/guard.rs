//! Request checks in front of every route: the surface is read-only, so a
//! request with a body is refused (413) before any handler runs; and when a
//! token is configured, the data endpoints (`/api/*` and the status page)
//! require it (401), while `/metrics` and the probes stay open.

use crate::config::Secret;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// What the guard enforces.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub token: Option<Arc<Secret>>,
}

pub async fn guard(State(access): State<Access>, request: Request, next: Next) -> Response {
    if has_body(&request) {
        return (StatusCode::PAYLOAD_TOO_LARGE, "requests to chiprisk carry no body\n").into_response();
    }
    if let Some(token) = &access.token {
        if needs_token(request.uri().path()) && !bearer(&request).is_some_and(|t| token.matches(t)) {
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
}
