//! The long-running service: build (bind the port, open the event source),
//! then run until the shutdown future completes. The only module that knows
//! every piece; nothing imports it back.

use crate::config::Settings;
use crate::event::Decoder;
use crate::pipeline::{self, Arrival, Outcome};
use crate::source::{FileFollower, Line, LineSplitter};
use crate::state::{self, Reader, Writer};
use crate::telemetry::Metrics;
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The bundled history `chiprisk run` serves when given no event file:
/// real, sourced policy and market events since 2019.
pub const EMBEDDED_EVENTS: &str = include_str!("../examples/history.jsonl");

/// The most bytes read from the event file at a time (each line is then
/// decoded, and applied under the write lock, one at a time).
const BATCH_BYTES: usize = 1 << 20;

/// Where the service's events come from.
enum EventSource {
    Embedded,
    File(FileFollower, Duration),
    Kafka(crate::config::KafkaSettings),
}

/// A built service: the port is bound and the event source is open.
pub struct Application {
    listeners: crate::http::Listeners,
    reader: Reader,
    writer: Writer,
    decoder: Decoder,
    source: EventSource,
    http: crate::http::HttpSettings,
    access: crate::http::Access,
}

impl Application {
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        let catalog = Arc::new(settings.catalog()?);
        let metrics = Arc::new(Metrics::new());
        let (writer, reader) =
            state::new(catalog.clone(), settings.scoring.clone(), metrics, settings.explain.max_contributions);
        let decoder = Decoder::new(catalog, settings.limits.clone());
        let access = crate::http::Access::from_settings(&settings.http)?;
        let listeners = crate::http::Listeners::bind(&settings.http).await?;
        let source = match &settings.source.file {
            _ if settings.kafka.brokers.is_some() => {
                // Checked now; connecting is retried until the brokers answer.
                crate::kafka::client_config(&settings.kafka)?;
                EventSource::Kafka(settings.kafka.clone())
            }
            Some(path) => EventSource::File(
                FileFollower::open(path, settings.limits.max_event_bytes)?,
                Duration::from_millis(settings.source.poll_interval_ms),
            ),
            None => EventSource::Embedded,
        };
        Ok(Self { listeners, reader, writer, decoder, source, http: settings.http.clone(), access })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listeners.local_addr()
    }

    /// The probe listener's address (`http.probe_listen`), if configured.
    pub fn probe_addr(&self) -> Option<SocketAddr> {
        self.listeners.probe_addr()
    }

    /// Serves until `shutdown` completes, then stops the event source. If
    /// the source fails (Kafka deliveries), serving stops and the error is
    /// returned, so that the process exits and is restarted.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Self { listeners, reader, writer, decoder, source, http, access } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let source_task: tokio::task::JoinHandle<anyhow::Result<()>> = match source {
            EventSource::Kafka(kafka) => tokio::spawn(crate::kafka::run(kafka, decoder, writer, stop_rx)),
            other => {
                let (tx, rx) = mpsc::channel::<()>();
                let mut stop = stop_rx;
                tokio::spawn(async move {
                    let _ = stop.changed().await;
                    drop(tx);
                });
                tokio::task::spawn_blocking(move || run_lines(&decoder, &writer, other, rx))
            }
        };
        let source_ended = Arc::new(tokio::sync::Notify::new());
        let ended = source_ended.clone();
        let source_task = tokio::spawn(async move {
            let result = source_task.await;
            ended.notify_one();
            result
        });
        let probes = listeners.probe_addr().map(|a| a.to_string());
        tracing::info!(addr = %listeners.local_addr(), probes = probes.as_deref(), "serving /metrics, /api/v1/scores and the status page");
        let stop_serving = async move {
            tokio::select! {
                _ = shutdown => {}
                _ = source_ended.notified() => {}
            }
        };
        let served = crate::http::serve(listeners, reader, access, &http, stop_serving).await;
        let _ = stop_tx.send(true);
        source_task.await?.context("event source task panicked")?.context("event source failed")?;
        served.context("HTTP server failed")?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The line sources (the bundled history, a file): the lines there at
/// start are the history, read before going ready; lines appended later
/// (a file) arrive as new events until told to stop.
fn run_lines(decoder: &Decoder, state: &Writer, source: EventSource, stop: mpsc::Receiver<()>) -> anyhow::Result<()> {
    match source {
        EventSource::Embedded => {
            let mut splitter = LineSplitter::new(decoder.limits().max_event_bytes);
            ingest(decoder, state, "embedded", Arrival::Rebuild, |f| {
                splitter.push(EMBEDDED_EVENTS.as_bytes(), &mut |n, l| f(n, l));
                splitter.finish(&mut |n, l| f(n, l));
            });
            state.set_ready();
            tracing::info!(
                events = state.summary().accepted,
                "loaded the bundled history, examples/history.jsonl (no source.file given)"
            );
            let _ = stop.recv();
        }
        EventSource::Kafka(_) => unreachable!("Kafka runs as an async task"),
        EventSource::File(mut follower, poll) => {
            let origin = follower.path().display().to_string();
            tracing::info!(path = %origin, "reading events");
            loop {
                let arrival = if state.is_ready() { Arrival::New } else { Arrival::Rebuild };
                let mut read = 0;
                let mut result = Ok(());
                ingest(decoder, state, &origin, arrival, |f| {
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
                    tracing::info!(path = %origin, accepted = s.accepted, duplicates = s.duplicates, rejected = s.rejected, "event file read; following it for new lines");
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

/// Feeds lines from `origin` through the pipeline: each line is decoded
/// without the board's lock, then applied under the write lock, held only
/// for that (readers wait only for the engine's updates, and nothing but
/// one decoded event is held besides the reader's buffer).
fn ingest(
    decoder: &Decoder,
    state: &Writer,
    origin: &str,
    arrival: Arrival,
    feed: impl FnOnce(&mut dyn FnMut(u64, Line<'_>)),
) {
    let metrics = state.metrics();
    let limit = decoder.limits().max_event_bytes;
    let mut on_line = |line_no: u64, line: Line<'_>| {
        let outcome = match line {
            Line::Text(bytes) => {
                // The time of `pipeline::process_counted`: decoding and applying.
                let started = Instant::now();
                let decoded = decoder.decode(bytes);
                let mut board = state.board();
                let outcome = pipeline::apply(&mut board.engine, decoded);
                metrics.observe_processing(started.elapsed());
                pipeline::count(&mut board.summary, metrics, &outcome, arrival);
                outcome
            }
            Line::TooLong(len) => {
                let o = Outcome::Rejected(pipeline::too_large(len, limit));
                pipeline::count(&mut state.board().summary, metrics, &o, arrival);
                o
            }
        };
        if let Outcome::Rejected(r) = &outcome {
            tracing::warn!(source = origin, line = line_no, reason = %r.reason, "rejected event: {}", r.message);
        }
    };
    feed(&mut on_line);
}
