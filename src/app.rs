//! The long-running service: build (bind the port, open the event source),
//! then run until the shutdown future completes.

use crate::config::Settings;
use crate::engine::Explanation;
use crate::event::{Decoder, Timestamp};
use crate::kafka::runner::KafkaRunner;
use crate::pipeline::{self, Outcome, Summary};
use crate::report::ScoresReport;
use crate::scoreboard::Scoreboard;
use crate::source::{FileFollower, Line, LineSplitter};
use crate::telemetry::Metrics;
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// The bundled scenario `chiprisk run` serves when given no event file.
pub const EMBEDDED_EVENTS: &str = include_str!("../examples/scenario.jsonl");

/// The most bytes read from the event file under one write lock, so that
/// HTTP readers are never kept waiting long.
const BATCH_BYTES: usize = 1 << 20;

/// State shared by the event source and the HTTP handlers.
#[derive(Clone)]
pub struct AppState {
    shared: Arc<Shared>,
}

struct Shared {
    scoring: RwLock<Scoreboard>,
    decoder: Decoder,
    metrics: Arc<Metrics>,
    /// False until the initial events are loaded.
    ready: AtomicBool,
    max_contributions: usize,
}

impl AppState {
    /// State for `settings`: Kafka mode (no shards until partitions are
    /// assigned) if `kafka.brokers` is set, else one shard for every vendor.
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let catalog = Arc::new(settings.catalog()?);
        let board = if settings.kafka.brokers.is_some() {
            Scoreboard::empty(catalog.clone(), settings.scoring.clone())
        } else {
            Scoreboard::single(catalog.clone(), settings.scoring.clone())
        };
        let metrics = Arc::new(Metrics::new());
        Ok(Self {
            shared: Arc::new(Shared {
                scoring: RwLock::new(board),
                decoder: Decoder::new(catalog, settings.limits.clone()),
                metrics,
                ready: AtomicBool::new(false),
                max_contributions: settings.explain.max_contributions,
            }),
        })
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    pub(crate) fn metrics_arc(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    pub(crate) fn decoder(&self) -> &Decoder {
        &self.shared.decoder
    }

    pub(crate) fn board_write(&self) -> std::sync::RwLockWriteGuard<'_, Scoreboard> {
        self.shared.scoring.write().expect("scoring lock")
    }

    /// Readiness for sources that can fall behind again (Kafka).
    pub(crate) fn set_live(&self, live: bool) {
        self.shared.ready.store(live, Ordering::Release);
        self.shared.metrics.set_ready(live);
    }

    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Acquire)
    }

    fn set_ready(&self) {
        self.shared.ready.store(true, Ordering::Release);
        self.shared.metrics.set_ready(true);
    }

    /// Every vendor's explained score as of `at`.
    pub fn report(&self, at: Timestamp) -> ScoresReport {
        let s = self.shared.scoring.read().expect("scoring lock");
        s.report(at, self.shared.max_contributions)
    }

    /// One vendor's explained score, or `None` if the id is not in the catalog.
    pub fn explain(&self, vendor: &str, at: Timestamp) -> Option<Explanation> {
        let s = self.shared.scoring.read().expect("scoring lock");
        s.explain(vendor, at, self.shared.max_contributions)
    }

    /// The metrics text, with scores computed as of now.
    pub fn render_metrics(&self) -> String {
        {
            let s = self.shared.scoring.read().expect("scoring lock");
            self.shared.metrics.record_scores(&s, Timestamp::now());
        }
        self.shared.metrics.render()
    }

    /// Feeds bytes of JSON lines from `origin` through the pipeline.
    fn ingest(&self, origin: &str, feed: impl FnOnce(&mut dyn FnMut(u64, Line<'_>))) {
        let shared = &*self.shared;
        let mut guard = shared.scoring.write().expect("scoring lock");
        let board = &mut *guard;
        let mut summary = board.unsharded;
        let engine = &mut board.shard_mut(0).expect("file sources use shard 0").engine;
        let limit = shared.decoder.limits().max_event_bytes;
        let mut on_line = |line_no: u64, line: Line<'_>| {
            let outcome = match line {
                Line::Text(bytes) => pipeline::process_counted(&shared.decoder, engine, &shared.metrics, bytes),
                Line::TooLong(len) => {
                    let o = Outcome::Rejected(pipeline::too_large(len, limit));
                    pipeline::record(&shared.metrics, &o);
                    o
                }
            };
            if let Outcome::Rejected(r) = &outcome {
                tracing::warn!(source = origin, line = line_no, reason = %r.reason, "rejected event: {}", r.message);
            }
            summary.count(&outcome);
        };
        feed(&mut on_line);
        board.unsharded = summary;
    }
}

/// Where the service's events come from.
enum EventSource {
    Embedded,
    File(FileFollower, Duration),
    Kafka(KafkaRunner),
}

/// A built service: the port is bound and the event source is open.
pub struct Application {
    listener: tokio::net::TcpListener,
    state: AppState,
    source: EventSource,
    http: crate::http::HttpSettings,
    access: crate::http::Access,
}

impl Application {
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let state = AppState::new(settings)?;
        let access = crate::http::Access { token: settings.http.api_token()?.map(Arc::new) };
        let addr: SocketAddr = settings.http.listen.parse().context("http.listen")?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("Failed to listen on {addr} (http.listen)"))?;
        let source = match &settings.source.file {
            _ if settings.kafka.brokers.is_some() => {
                EventSource::Kafka(KafkaRunner::build(&settings.kafka, state.clone())?)
            }
            Some(path) => EventSource::File(
                FileFollower::open(path, settings.limits.max_event_bytes)?,
                Duration::from_millis(settings.source.poll_interval_ms),
            ),
            None => EventSource::Embedded,
        };
        Ok(Self { listener, state, source, http: settings.http.clone(), access })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then stops the event source. If
    /// the source fails (Kafka deliveries), serving stops and the error is
    /// returned, so that the process exits and is restarted.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Self { listener, state, source, http, access } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let source_task: tokio::task::JoinHandle<anyhow::Result<()>> = match source {
            EventSource::Kafka(runner) => tokio::spawn(runner.run(stop_rx)),
            other => {
                let (tx, rx) = mpsc::channel::<()>();
                let mut stop = stop_rx;
                tokio::spawn(async move {
                    let _ = stop.changed().await;
                    drop(tx);
                });
                let source_state = state.clone();
                tokio::task::spawn_blocking(move || run_source(source_state, other, rx))
            }
        };
        let source_ended = Arc::new(tokio::sync::Notify::new());
        let ended = source_ended.clone();
        let source_task = tokio::spawn(async move {
            let result = source_task.await;
            ended.notify_one();
            result
        });
        tracing::info!(addr = %listener.local_addr()?, "serving /metrics, /api/v1/scores and the status page");
        let stop_serving = async move {
            tokio::select! {
                _ = shutdown => {}
                _ = source_ended.notified() => {}
            }
        };
        let served = crate::http::serve(listener, crate::http::router(state, access), &http, stop_serving).await;
        let _ = stop_tx.send(true);
        source_task.await?.context("event source task panicked")?.context("event source failed")?;
        served.context("HTTP server failed")?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Loads the source's events, marks the service ready, then (for a file)
/// follows it until told to stop.
fn run_source(state: AppState, source: EventSource, stop: mpsc::Receiver<()>) -> anyhow::Result<()> {
    match source {
        EventSource::Embedded => {
            let mut splitter = LineSplitter::new(state.shared.decoder.limits().max_event_bytes);
            state.ingest("embedded", |f| {
                splitter.push(EMBEDDED_EVENTS.as_bytes(), &mut |n, l| f(n, l));
                splitter.finish(&mut |n, l| f(n, l));
            });
            state.set_ready();
            tracing::info!(
                events = state.summary().accepted,
                "loaded the bundled example scenario (no source.file given)"
            );
            let _ = stop.recv();
        }
        EventSource::Kafka(_) => unreachable!("Kafka runs as an async task"),
        EventSource::File(mut follower, poll) => {
            let origin = follower.path().display().to_string();
            tracing::info!(path = %origin, "reading events");
            loop {
                let mut read = 0;
                let mut result = Ok(());
                state.ingest(&origin, |f| {
                    result = follower.poll(BATCH_BYTES, &mut |n, l| f(n, l)).map(|n| read = n);
                });
                if let Err(e) = result {
                    tracing::error!(path = %origin, "cannot read the event file: {e:#}");
                }
                if read > 0 {
                    continue;
                }
                if !state.is_ready() {
                    state.set_ready();
                    let s = state.summary();
                    tracing::info!(path = %origin, accepted = s.accepted, duplicates = s.duplicates, rejected = s.rejected, "initial events loaded; following the file for new lines");
                }
                match stop.recv_timeout(poll) {
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            }
        }
    }
    Ok(())
}

impl AppState {
    /// Totals of what the source has delivered.
    pub fn summary(&self) -> Summary {
        self.shared.scoring.read().expect("scoring lock").summary()
    }

    /// Totals of what the source has delivered, and distinct events held.
    pub fn counts(&self) -> (Summary, u64) {
        let board = self.shared.scoring.read().expect("scoring lock");
        (board.summary(), board.events_held())
    }
}
