//! One stop signal for every loop of the service, as in tokio's
//! mini-redis: a [`Trigger`] stops the service once, and each loop holds
//! its own [`Shutdown`] to learn it (the HTTP servers, the Kafka loop, and
//! the file source on its blocking thread).
//!
//! What triggers it, in `app.rs`: the caller's signal ([`signal`]:
//! SIGTERM or SIGINT in production, a oneshot in tests), or the event
//! source ending (a failed delivery must restart the process), or the HTTP
//! server failing.

use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;

/// Stops the service: every [`Shutdown`] made from it learns it. Dropping
/// every trigger stops the service too.
#[derive(Clone)]
pub struct Trigger {
    sender: std::sync::Arc<watch::Sender<bool>>,
}

/// Whether the service was told to stop, and a wait until it is. Each loop
/// holds its own clone.
#[derive(Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

/// A trigger and the first of its [`Shutdown`]s.
pub fn channel() -> (Trigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (Trigger { sender: std::sync::Arc::new(sender) }, Shutdown { receiver })
}

impl Trigger {
    /// Stops the service. Idempotent.
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    /// Triggers once `signal` completes; returns early if the service is
    /// stopped otherwise, so that nothing is left waiting on the signal.
    pub async fn on(self, signal: impl Future<Output = ()>, mut shutdown: Shutdown) {
        tokio::select! {
            () = signal => self.trigger(),
            () = shutdown.recv() => {}
        }
    }
}

impl Shutdown {
    /// Whether the service was told to stop.
    pub fn is_shutdown(&self) -> bool {
        *self.receiver.borrow() || self.receiver.has_changed().is_err()
    }

    /// Completes once the service is told to stop (at once if it was).
    /// Cancel-safe: a loop may `select!` on it every turn.
    pub async fn recv(&mut self) {
        // An error: every trigger is gone, which also means stop.
        let _ = self.receiver.wait_for(|stop| *stop).await;
    }

    /// [`Shutdown::recv`] as an owned future, for a server that takes
    /// `impl Future` as its shutdown.
    pub async fn wait(mut self) {
        self.recv().await
    }

    /// Blocks the thread for up to `timeout` or until the service is told
    /// to stop; whether it was. For a loop on a blocking thread (never a
    /// tokio worker: the runtime refuses, and panics).
    pub fn wait_blocking(&mut self, timeout: Duration) -> bool {
        let handle = tokio::runtime::Handle::current();
        handle.block_on(async { tokio::time::timeout(timeout, self.recv()).await.is_ok() })
    }
}

/// Completes on SIGINT or SIGTERM (Kubernetes sends SIGTERM to stop a pod).
/// The handlers are installed when this is called, not when first polled,
/// so a signal that arrives during start-up is not lost. Call it inside the
/// runtime.
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_shutdown_learns_a_trigger_even_one_cloned_after_it() {
        let (trigger, mut first) = channel();
        let second = first.clone();
        assert!(!first.is_shutdown() && !second.is_shutdown());
        let waiting = tokio::spawn(second.wait());
        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap();
        first.recv().await;
        assert!(first.is_shutdown() && first.clone().is_shutdown());
    }

    #[tokio::test]
    async fn dropping_every_trigger_is_a_shutdown() {
        let (trigger, mut shutdown) = channel();
        drop(trigger);
        assert!(shutdown.is_shutdown());
        shutdown.recv().await;
    }

    #[tokio::test]
    async fn a_blocking_thread_waits_out_its_timeout_or_wakes_at_the_trigger() {
        let (trigger, mut shutdown) = channel();
        // The trigger waits until the first wait is over, however late the
        // blocking thread starts.
        let (first_over, over) = std::sync::mpsc::channel();
        let waited = tokio::task::spawn_blocking(move || {
            let quiet = shutdown.wait_blocking(Duration::from_millis(20));
            first_over.send(()).unwrap();
            let woken = shutdown.wait_blocking(Duration::from_secs(60));
            (quiet, woken)
        });
        tokio::task::spawn_blocking(move || over.recv()).await.unwrap().unwrap();
        let started = std::time::Instant::now();
        trigger.trigger();
        assert_eq!(waited.await.unwrap(), (false, true));
        assert!(started.elapsed() < Duration::from_secs(30), "woken by the trigger, not the timeout");
    }

    #[tokio::test]
    async fn the_signal_task_ends_when_the_service_stops_otherwise() {
        let (trigger, shutdown) = channel();
        let watcher = tokio::spawn(trigger.clone().on(std::future::pending(), shutdown));
        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(5), watcher).await.unwrap().unwrap();
    }
}
