//! Security headers on every response the router gives, errors included.
//!
//! The status page is HTML and inline SVG rendered on the server: one
//! `<style>` element, links back to itself, no script, no image, no form and
//! nothing from another origin. The policy allows exactly that; the JSON
//! and text endpoints need nothing at all. (hyper's own answers to a
//! malformed request, such as 400 or 431, have no body and no headers.)

use axum::http::header::{
    HeaderName, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::response::Response;

/// The headers, one definition for every response.
pub const SECURITY_HEADERS: [(HeaderName, &str); 4] = [
    (
        CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    (X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (X_FRAME_OPTIONS, "DENY"),
    (REFERRER_POLICY, "no-referrer"),
];

/// Adds [`SECURITY_HEADERS`] to `response`.
pub async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
