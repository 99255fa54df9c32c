//! chiprisk: China-market risk scores for AI chip vendors, from a stream of
//! policy and market events.
//!
//! - [`catalog`]: the closed set of vendors that can be scored.
//! - [`event`]: event schema v1; bytes become validated [`Event`]s here, once.
//! - [`engine`]: the pure scoring core (no I/O): apply events, score as of a
//!   time, explain a score.
#![forbid(unsafe_code)]

pub mod app;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod engine;
pub mod event;
pub mod http;
pub mod pipeline;
pub mod report;
pub mod source;
pub mod telemetry;

pub use catalog::{Catalog, Vendor, VendorId};
pub use event::{Decoder, Event, Rejection};

/// Completes on SIGINT or SIGTERM (Kubernetes sends SIGTERM to stop a pod).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received; shutting down"),
        _ = term => tracing::info!("SIGTERM received; shutting down"),
    }
}
