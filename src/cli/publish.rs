//! `chiprisk publish`: validate events with the service's own decoder and
//! produce the accepted ones to the events topic, keyed by event id, with
//! the idempotent producer and `acks=all`. An event counts as sent only
//! once the broker has acknowledged it.

use super::exit;
use super::replay::Tally;
use crate::config::Settings;
use crate::engine::Applied;
use crate::event::Decoder;
use crate::kafka::{backpressure, client_config};
use crate::pipeline::{Outcome, Summary};
use crate::source;
use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// JSON-lines file of events; `-` for stdin.
    pub file: PathBuf,
    /// Topic to produce to; default: the first of kafka.topics.
    #[arg(long)]
    pub topic: Option<String>,
    /// Send nothing if any line is rejected.
    #[arg(long)]
    pub strict: bool,
    /// Validate only; do not connect to Kafka.
    #[arg(long)]
    pub dry_run: bool,
}

/// How long to wait for the brokers to answer before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// chiprisk's producer defaults for publishing; `kafka.properties` overrides
/// them. A record not acknowledged within 30 s counts as failed.
const PUBLISH_DEFAULTS: &[(&str, &str)] = &[("message.timeout.ms", "30000"), ("linger.ms", "5")];

/// Acknowledgements, counted by librdkafka's delivery callback.
#[derive(Default)]
struct Acks {
    sent: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

/// A command line tool reports the outcome once, at the end: librdkafka's
/// client errors (retried connections) are not printed as they happen.
impl ClientContext for Acks {
    fn log(&self, _: rdkafka::config::RDKafkaLogLevel, _: &str, _: &str) {}

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!("kafka: {error}: {reason}");
    }
}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.sent.fetch_add(1, Ordering::Relaxed),
            Err((e, _)) => {
                self.first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| e.to_string());
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

/// Runs `publish`; returns the exit code.
pub fn publish(settings: &Settings, args: &PublishArgs) -> anyhow::Result<u8> {
    let started = Instant::now();
    let name = args.file.display().to_string();
    let input = match read_input(&args.file) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("chiprisk: cannot read {name}: {e}");
            return Ok(exit::NO_INPUT);
        }
    };
    let decoder = Decoder::new(Arc::new(settings.catalog()?), settings.limits.clone());
    let bar = progress(input.len() as u64);

    if args.dry_run || args.strict {
        if let Some(code) = check_first(&name, &input, &decoder, &bar, args.dry_run) {
            return Ok(code);
        }
    }

    let Some(topic) = args.topic.as_deref().or(settings.kafka.topics.first().map(String::as_str)) else {
        eprintln!("chiprisk: no topic: give --topic or set kafka.topics");
        return Ok(exit::CONFIG);
    };
    let brokers = settings.kafka.brokers.as_deref().unwrap_or_default().to_owned();
    let producer = match connect(settings, topic) {
        Ok(p) => p,
        Err((code, e)) => {
            eprintln!("chiprisk: nothing sent: {e:#}");
            return Ok(code);
        }
    };
    let mut stopped = Ok(());
    let tally = events(&name, &input, &decoder, &bar, |bytes| {
        let (outcome, id) = checked(&decoder, &bar, bytes);
        if let (Some(id), Ok(())) = (id, &stopped) {
            stopped = send(&producer, topic, &id, bytes);
        }
        outcome
    });
    let run = Run { name: &name, topic, brokers: &brokers, started, tally, stopped, strict: args.strict };
    Ok(finish(&producer, &bar, run))
}

/// `--dry-run` and `--strict`: every line checked before anything is
/// sent. The exit code if nothing is to be sent.
fn check_first(name: &str, input: &[u8], decoder: &Decoder, bar: &ProgressBar, dry_run: bool) -> Option<u8> {
    let tally = events(name, input, decoder, bar, |bytes| checked(decoder, bar, bytes).0);
    if dry_run || tally.rejected > 0 {
        bar.finish_and_clear();
        let verdict = if dry_run { "dry run, nothing sent" } else { "--strict: nothing sent" };
        eprintln!("chiprisk: {} valid, {} rejected ({verdict})", tally.accepted, tally.rejected);
        return Some(if tally.rejected > 0 { exit::FAILURE } else { 0 });
    }
    bar.reset();
    None
}

/// What one run of `publish` did, until the broker has answered.
struct Run<'a> {
    name: &'a str,
    topic: &'a str,
    brokers: &'a str,
    started: Instant,
    tally: Summary,
    /// Why sending stopped before the end of the input, if it did.
    stopped: anyhow::Result<()>,
    strict: bool,
}

/// Waits for the broker's acknowledgements and says what was sent; the
/// exit code.
fn finish(producer: &ThreadedProducer<Acks>, bar: &ProgressBar, run: Run<'_>) -> u8 {
    bar.set_message("waiting for the broker's acknowledgements");
    let flushed = producer.flush(Duration::from_secs(60));
    bar.finish_and_clear();
    let acks = producer.context();
    let (sent, failed) = (acks.sent.load(Ordering::Relaxed), acks.failed.load(Ordering::Relaxed));
    let unacknowledged = run.tally.accepted - sent - failed;
    let seconds = run.started.elapsed().as_secs_f64();
    eprintln!(
        "chiprisk: sent {sent} to {} on {}, rejected {}, in {seconds:.1} s ({:.0} events/s)",
        run.topic,
        run.brokers,
        run.tally.rejected,
        sent as f64 / seconds.max(1e-9)
    );
    if let Err(e) = &run.stopped {
        eprintln!("chiprisk: stopped before the end of {}: {e:#}", run.name);
    }
    if failed > 0 || unacknowledged > 0 || flushed.is_err() || run.stopped.is_err() {
        let why = acks.first_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
        eprintln!(
            "chiprisk: {} events NOT sent (not acknowledged by the broker: {}); sending them again is safe, chiprisk ignores an id it has seen",
            failed + unacknowledged,
            why.unwrap_or_else(|| "timed out".into())
        );
        return exit::FAILURE;
    }
    if run.tally.rejected > 0 && run.strict {
        exit::FAILURE
    } else {
        0
    }
}

/// The whole input: a file, or stdin for `-`.
fn read_input(file: &std::path::Path) -> io::Result<Vec<u8>> {
    if file.as_os_str() == "-" {
        let mut buf = Vec::new();
        io::stdin().lock().read_to_end(&mut buf)?;
        Ok(buf)
    } else {
        std::fs::read(file)
    }
}

/// A progress bar on stderr for a terminal (none otherwise), by bytes read.
fn progress(len: u64) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {per_sec} {msg}").expect("a valid template"),
    );
    bar
}

/// Every line of the input through `step`, rejections reported above the
/// progress bar, counted.
fn events(
    name: &str,
    input: &[u8],
    decoder: &Decoder,
    bar: &ProgressBar,
    step: impl FnMut(&[u8]) -> Outcome,
) -> Summary {
    let report = |line: String| bar.suspend(|| eprintln!("{line}"));
    let mut tally = Tally::new(name, step, report);
    source::ingest_bytes(input, decoder.limits().max_event_bytes, &mut tally);
    tally.summary
}

/// One line through the decoder, with the progress bar moved past it: its
/// outcome, and the event's id if it is accepted (to be sent).
fn checked(decoder: &Decoder, bar: &ProgressBar, bytes: &[u8]) -> (Outcome, Option<String>) {
    bar.inc(bytes.len() as u64 + 1);
    match decoder.decode(bytes) {
        Ok(e) => (Outcome::Applied { kind: e.kind, applied: Applied::Accepted }, Some(e.id.into_owned())),
        Err(r) => (Outcome::Rejected(r), None),
    }
}

/// The producer, once the brokers have answered and the topic exists; or
/// the exit code and why not: the configuration (78) or the brokers (69).
fn connect(settings: &Settings, topic: &str) -> Result<ThreadedProducer<Acks>, (u8, anyhow::Error)> {
    let config_error = |e: anyhow::Error| (exit::CONFIG, e);
    let mut config = client_config(&settings.kafka).map_err(config_error)?;
    for (k, v) in PUBLISH_DEFAULTS {
        if config.get(k).is_none() {
            config.set(*k, *v);
        }
    }
    config.set("enable.idempotence", "true").set("acks", "all");
    let producer: ThreadedProducer<Acks> = config
        .create_with_context(Acks::default())
        .context("cannot create the Kafka producer (kafka.properties)")
        .map_err(config_error)?;
    let brokers = settings.kafka.brokers.as_deref().unwrap_or_default();
    let unavailable = |e: anyhow::Error| (exit::UNAVAILABLE, e);
    let metadata = producer
        .client()
        .fetch_metadata(Some(topic), CONNECT_TIMEOUT)
        .with_context(|| format!("cannot reach the Kafka brokers {brokers} (kafka.brokers)"))
        .map_err(unavailable)?;
    match metadata.topics().first().and_then(|t| t.error()) {
        None => Ok(producer),
        Some(e) => Err(unavailable(anyhow::anyhow!("topic {topic} on {brokers}: {:?}", RDKafkaErrorCode::from(e)))),
    }
}

/// Queues one event, keyed by its id; waits while librdkafka's queue is full.
// The record handed back with a refusal is rdkafka's shape, as large as it is.
#[allow(clippy::result_large_err)]
fn send(producer: &ThreadedProducer<Acks>, topic: &str, id: &str, payload: &[u8]) -> anyhow::Result<()> {
    let record = BaseRecord::to(topic).key(id).payload(payload);
    backpressure::offer_blocking(record, |r| producer.send(r)).with_context(|| format!("cannot queue event {id}"))
}
