//! The HTTP surface under hostile clients: bodies, huge or numerous
//! headers, slow clients, odd paths and queries, and the optional token.

mod helpers;

use chiprisk::http::{Secret, SECURITY_HEADERS};
use helpers::{spawn_app, spawn_with, test_settings};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends raw bytes and returns what the server answers until it closes the
/// connection (or 10 s pass).
async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or("")
}

#[tokio::test]
async fn requests_with_a_body_are_refused_before_any_handler() {
    let app = spawn_app(None).await;
    let r = app.client.get(app.url("/api/v1/scores")).body("hello").send().await.unwrap();
    assert_eq!(r.status(), 413);
    let r = raw(app.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n").await;
    assert!(status_line(&r).contains("413"), "{r}");
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let r = app.client.request(method.parse().unwrap(), app.url("/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 405, "{method}");
    }
    app.stop().await;
}

#[tokio::test]
async fn oversized_and_too_many_headers_get_431() {
    let app = spawn_app(None).await;
    let big = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n", "a".repeat(40_000));
    let r = raw(app.addr, big.as_bytes()).await;
    assert!(status_line(&r).contains("431"), "{}", status_line(&r));
    // Between the configured 64 and hyper's default of 100.
    let many: String = (0..80).map(|i| format!("X-H{i}: v\r\n")).collect();
    let r =
        raw(app.addr, format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n").as_bytes()).await;
    assert!(status_line(&r).contains("431"), "{}", status_line(&r));
    // The server is still fine.
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let mut settings = test_settings();
    settings.http.header_read_timeout_ms = std::time::Duration::from_millis(300);
    let app = spawn_with(settings).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the connection was still open after 10 s");
    assert!(!String::from_utf8_lossy(&out).contains("200 OK"));
    app.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_and_are_then_served() {
    let mut settings = test_settings();
    settings.http.max_connections = 1;
    settings.http.header_read_timeout_ms = std::time::Duration::from_millis(500);
    let app = spawn_with(settings).await;
    // An idle connection holds the only slot until the header timeout closes it.
    let _idle = TcpStream::connect(app.addr).await.unwrap();
    let r = raw(app.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await;
    assert!(status_line(&r).contains("200"), "{r}");
    app.stop().await;
}

#[tokio::test]
async fn odd_paths_and_queries_get_4xx_never_a_5xx() {
    let mut settings = test_settings();
    settings.http.header_read_timeout_ms = std::time::Duration::from_millis(1000);
    let app = spawn_with(settings).await;
    let long = "a".repeat(5000);
    let paths = [
        "//".to_owned(),
        "/%00".to_owned(),
        "/api/v1/scores/%ff%fe".to_owned(),
        "/api/v1/scores/nvidia/extra".to_owned(),
        format!("/api/v1/scores/{long}"),
        "/api/v1/scores?at=%".to_owned(),
        "/api/v1/scores?at=%ff".to_owned(),
        format!("/api/v1/scores?at={long}"),
        "/api/v1/scores?at=2025-01-01T00:00:00Z&at=x".to_owned(),
        "/api/v1/scores?unknown=1&&&==".to_owned(),
        "/api/v1/scores/nvidia?at=99999-01-01T00:00:00Z".to_owned(),
        "/metrics?x=%zz".to_owned(),
        "/../../etc/passwd".to_owned(),
        "/api/v1/scores/%2e%2e%2f".to_owned(),
    ];
    for path in &paths {
        let status = app.get(path).await.status().as_u16();
        assert!((200..500).contains(&status), "{path}: {status}");
    }
    for request in
        [&b"GET * HTTP/1.1\r\nHost: x\r\n\r\n"[..], b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\x00\xff\r\n\r\n"]
    {
        let r = raw(app.addr, request).await;
        assert!(!status_line(&r).contains(" 5"), "{request:?}: {r}");
    }
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn with_a_token_the_data_needs_it_and_metrics_and_probes_stay_open() {
    let mut settings = test_settings();
    settings.http.api_token = Some(Secret::new("t0ken"));
    let app = spawn_with(settings).await;
    for path in ["/api/v1/scores", "/api/v1/scores/nvidia", "/"] {
        assert_eq!(app.get(path).await.status(), 401, "{path}");
        let wrong = app.client.get(app.url(path)).bearer_auth("t0kem").send().await.unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
        let right = app.client.get(app.url(path)).bearer_auth("t0ken").send().await.unwrap();
        assert_eq!(right.status(), 200, "{path}");
    }
    let r = app.get("/api/v1/scores").await;
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"chiprisk\"");
    for path in ["/metrics", "/healthz", "/readyz"] {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
    app.stop().await;
}

#[tokio::test]
async fn with_a_metrics_token_metrics_need_it_and_probes_stay_open() {
    let mut settings = test_settings();
    settings.http.metrics_token = Some(Secret::new("m3trics"));
    settings.http.api_token = Some(Secret::new("t0ken"));
    settings.http.probe_listen = Some("127.0.0.1:0".into());
    let app = spawn_with(settings).await;
    let metrics = |token: Option<&'static str>| {
        let mut request = app.client.get(app.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap() }
    };
    let denied = metrics(None).await;
    assert_eq!(denied.status(), 401);
    assert_eq!(denied.headers()["www-authenticate"], "Bearer realm=\"chiprisk\"");
    assert!(!denied.text().await.unwrap().contains("chiprisk_"), "the 401 carries no metrics");
    // Each token opens its own endpoints only.
    assert_eq!(metrics(Some("t0ken")).await.status(), 401);
    let allowed = metrics(Some("m3trics")).await;
    assert_eq!(allowed.status(), 200);
    assert!(allowed.text().await.unwrap().contains("chiprisk_ready 1"));
    let api = app.client.get(app.url("/api/v1/status")).bearer_auth("m3trics").send().await.unwrap();
    assert_eq!(api.status(), 401);
    let probes = app.probes.unwrap();
    for url in ["/healthz", "/readyz"].map(|p| [app.url(p), format!("http://{probes}{p}")]).concat() {
        assert_eq!(app.client.get(&url).send().await.unwrap().status(), 200, "{url}");
    }
    app.stop().await;
}

/// Asserts that `response` carries every security header.
fn assert_secured(what: &str, response: &reqwest::Response) {
    for (name, value) in &SECURITY_HEADERS {
        assert_eq!(response.headers().get(name).map(|v| v.to_str().unwrap()), Some(*value), "{what}: {name}");
    }
}

#[tokio::test]
async fn every_kind_of_response_carries_the_security_headers() {
    let mut settings = test_settings();
    settings.http.api_token = Some(Secret::new("t0ken"));
    settings.http.probe_listen = Some("127.0.0.1:0".into());
    let app = spawn_with(settings).await;
    let probes = app.probes.unwrap();
    let cases = [
        ("GET", app.url("/"), 401),
        ("GET", app.url("/api/v1/scores"), 401),
        ("GET", app.url("/metrics"), 200),
        ("GET", app.url("/healthz"), 200),
        ("HEAD", app.url("/readyz"), 200),
        ("GET", app.url("/nowhere"), 404),
        ("POST", app.url("/metrics"), 405),
        ("GET", format!("http://{probes}/readyz"), 200),
        ("GET", format!("http://{probes}/api/v1/scores"), 404),
    ];
    for (method, url, status) in cases {
        let r = app.client.request(method.parse().unwrap(), &url).send().await.unwrap();
        assert_eq!(r.status(), status, "{method} {url}");
        assert_secured(&format!("{method} {url}"), &r);
    }
    for path in ["/", "/api/v1/scores", "/api/v1/scores/nope"] {
        let r = app.client.get(app.url(path)).bearer_auth("t0ken").send().await.unwrap();
        assert!([200, 404].contains(&r.status().as_u16()), "{path}");
        assert_secured(path, &r);
    }
    let r = app.client.get(app.url("/metrics")).body("x").send().await.unwrap();
    assert_eq!(r.status(), 413);
    assert_secured("413", &r);
    app.stop().await;
}

/// While rebuilding (its broker is down), the answers are 503s, secured
/// like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_while_rebuilding_carries_the_security_headers() {
    let (_mock, mut settings) = helpers::rebuilding_settings();
    settings.http.probe_listen = Some("127.0.0.1:0".into());
    let app = helpers::start(settings).await;
    let probes = app.probes.unwrap();
    for url in [app.url("/readyz"), app.url("/api/v1/scores"), app.url("/"), format!("http://{probes}/readyz")] {
        let r = app.client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 503, "{url}");
        assert_secured(&url, &r);
    }
    app.stop().await;
}
