//! The HTTP/1.1 server loop: hyper with explicit limits (at most
//! `max_connections` at once, request heads of at most `max_header_bytes`
//! and `max_headers` read within `header_read_timeout`, the write and idle
//! deadlines of [`super::deadline`], at most `max_requests` per connection),
//! and a graceful stop that lets requests in flight finish.

use super::deadline::{Activity, DeadlineIo};
use crate::config::HttpSettings;
use axum::http::{header, HeaderValue, Request};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// How long requests in flight may take to finish after the stop signal.
const DRAIN: Duration = Duration::from_secs(5);

/// Connections at once on the probe listener: the kubelet opens one per
/// probe, a few per period.
const PROBE_CONNECTIONS: usize = 16;

/// What one listener allows its clients.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
    pub max_requests: u64,
    pub max_header_bytes: usize,
    pub max_headers: usize,
}

impl Limits {
    /// The limits of `http.listen`, as configured.
    pub fn api(settings: &HttpSettings) -> Self {
        Self {
            max_connections: settings.max_connections,
            header_read_timeout: settings.header_read_timeout_ms,
            idle_timeout: settings.idle_timeout_ms,
            write_timeout: settings.write_timeout_ms,
            max_requests: settings.max_requests_per_connection,
            max_header_bytes: settings.max_header_bytes,
            max_headers: settings.max_headers,
        }
    }

    /// The limits of `http.probe_listen`: the same, with its own few slots.
    pub fn probes(settings: &HttpSettings) -> Self {
        Self { max_connections: PROBE_CONNECTIONS, ..Self::api(settings) }
    }
}

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes)
        .max_headers(limits.max_headers);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection = graceful.watch(connection(&builder, stream, &router, &limits));
        tokio::spawn(async move {
            // Errors here are the client's (reset, bad request, timeout): nothing to report.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("HTTP connections still open after {DRAIN:?}; closing them");
    }
    Ok(())
}

/// One client's connection: its socket under the deadlines, and the router
/// behind a count of its requests.
fn connection(
    builder: &http1::Builder,
    stream: TcpStream,
    router: &Router,
    limits: &Limits,
) -> impl hyper_util::server::graceful::GracefulConnection + Send + 'static {
    let activity = Arc::new(Activity::default());
    let io = DeadlineIo::new(stream, activity.clone(), limits.write_timeout, limits.idle_timeout);
    let inner = TowerToHyperService::new(router.clone());
    let served = AtomicU64::new(0);
    let max_requests = limits.max_requests;
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        let last = served.fetch_add(1, Ordering::Relaxed) + 1 >= max_requests;
        let in_flight = activity.begin();
        let response = hyper::service::Service::call(&inner, request);
        async move {
            let mut response = response.await?;
            drop(in_flight);
            if last {
                // hyper ends the connection after this response.
                response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok::<_, Infallible>(response)
        }
    });
    builder.serve_connection(TokioIo::new(io), service)
}
