//! chiprisk: China-market risk scores for AI chip vendors, from a stream of
//! policy and market events.
//!
//! - [`catalog`]: the closed set of vendors that can be scored.
//! - [`event`]: event schema v1; bytes become validated [`Event`]s here, once.
//! - [`engine`]: the pure scoring core (no I/O): apply events, score as of a
//!   time, explain a score.
//! - [`pipeline`]: the one step every source runs per message.
//! - [`state`]: the scoreboard behind its lock: a write handle for the event
//!   source, a read handle for HTTP and telemetry.
//! - [`source`], [`kafka`]: where events come from (a file, Kafka).
//! - [`http`], [`telemetry`], [`cli`]: the shells.
//! - [`app`]: builds the pieces from [`config::Settings`] and runs them.
#![forbid(unsafe_code)]

pub mod app;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod engine;
pub mod event;
pub mod http;
pub mod kafka;
pub mod pipeline;
pub mod report;
pub mod source;
pub mod state;
pub mod synthetic;
pub mod telemetry;

pub use catalog::{Catalog, Vendor, VendorId};
pub use event::{Decoder, Event, Rejection};

/// Completes on SIGINT or SIGTERM (Kubernetes sends SIGTERM to stop a pod).
/// The handlers are installed when this is called, not when first polled,
/// so a signal that arrives during start-up is not lost. Call it inside the
/// runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received; shutting down"),
                _ = int.recv() => tracing::info!("SIGINT received; shutting down"),
            },
            _ => {
                tracing::warn!("cannot install signal handlers; stop with SIGKILL");
                std::future::pending::<()>().await
            }
        }
    }
}
