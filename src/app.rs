//! The long-running service: build (bind the port, open the event source),
//! then run until the shutdown future completes. The only module that knows
//! every piece; nothing imports it back.

use crate::config::{KafkaSettings, Settings};
use crate::event::Decoder;
use crate::shutdown::{self, Shutdown};
use crate::source::{FileFollower, LineSource};
use crate::state::{self, Reader, Writer};
use crate::telemetry::Metrics;
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

/// Where the service's events come from.
enum EventSource {
    Lines(LineSource),
    Kafka(KafkaSettings),
}

impl EventSource {
    fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        if settings.kafka.brokers.is_some() {
            // Checked now; connecting is retried until the brokers answer.
            crate::kafka::client_config(&settings.kafka)?;
            return Ok(Self::Kafka(settings.kafka.clone()));
        }
        Ok(Self::Lines(match &settings.source.file {
            Some(path) => LineSource::File {
                follower: FileFollower::open(path, settings.limits.max_event_bytes)?,
                poll: settings.source.poll_interval_ms,
            },
            None => LineSource::Embedded,
        }))
    }

    /// Runs until `shutdown`, or until the source fails.
    async fn run(self, decoder: Decoder, writer: Writer, shutdown: Shutdown) -> anyhow::Result<()> {
        match self {
            Self::Lines(lines) => lines.run(decoder, writer, shutdown).await,
            Self::Kafka(kafka) => crate::kafka::run(kafka, decoder, writer, shutdown).await,
        }
    }
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
        let source = EventSource::from_settings(settings)?;
        Ok(Self { listeners, reader, writer, decoder, source, http: settings.http.clone(), access })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listeners.local_addr()
    }

    /// The probe listener's address (`http.probe_listen`), if configured.
    pub fn probe_addr(&self) -> Option<SocketAddr> {
        self.listeners.probe_addr()
    }

    /// Serves until `signal` completes; then the HTTP servers and the event
    /// source stop together, each finishing what it has in flight (the
    /// requests being answered; the Kafka batch, its deliveries and the
    /// commit), so a stop takes the longer of the two drains. If
    /// the source fails (Kafka deliveries), serving stops and the error is
    /// returned, so that the process exits and is restarted.
    ///
    /// One [`Shutdown`] stops every loop: the event source and the HTTP
    /// servers each hold one. Three things trigger it: `signal`, the event
    /// source ending (it ends only when it fails or is told to stop), and
    /// the HTTP server ending.
    pub async fn run(self, signal: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Self { listeners, reader, writer, decoder, source, http, access } = self;
        let (trigger, shutdown) = shutdown::channel();
        tokio::spawn(trigger.clone().on(signal, shutdown.clone()));
        let source = tokio::spawn({
            let (trigger, shutdown) = (trigger.clone(), shutdown.clone());
            async move {
                let result = source.run(decoder, writer, shutdown).await;
                trigger.trigger();
                result
            }
        });
        let probes = listeners.probe_addr().map(|a| a.to_string());
        tracing::info!(addr = %listeners.local_addr(), probes = probes.as_deref(), "serving /metrics, /api/v1/scores and the status page");
        let served = crate::http::serve(listeners, reader, access, &http, shutdown.wait()).await;
        trigger.trigger();
        source.await.context("event source task panicked")?.context("event source failed")?;
        served.context("HTTP server failed")?;
        tracing::info!("stopped");
        Ok(())
    }
}
