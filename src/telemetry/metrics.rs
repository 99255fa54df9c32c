//! Every metric chiprisk exports, registered in one place. Callers use the
//! typed methods; label values come only from enums and the vendor catalog.

use super::families::{self as F, Family};
use crate::event::{EventType, RejectReason, Timestamp};
use prometheus::{Encoder, GaugeVec, Histogram, IntCounter, IntCounterVec, IntGaugeVec, Registry, TextEncoder};
use std::time::Duration;

/// What happened to one event, for `chiprisk_events_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    Accepted,
    Duplicate,
}

impl EventOutcome {
    fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Accepted => "accepted",
            EventOutcome::Duplicate => "duplicate",
        }
    }
}

/// Kinds of Kafka error, for `chiprisk_kafka_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaErrorKind {
    /// Brokers unreachable or connections lost.
    Transport,
    /// Authentication or authorisation failed.
    Auth,
    /// A record could not be delivered.
    Produce,
    /// Consuming or committing failed.
    Consume,
    /// Topic creation or metadata failed.
    Admin,
    Other,
}

impl KafkaErrorKind {
    pub const ALL: [KafkaErrorKind; 6] = [
        KafkaErrorKind::Transport,
        KafkaErrorKind::Auth,
        KafkaErrorKind::Produce,
        KafkaErrorKind::Consume,
        KafkaErrorKind::Admin,
        KafkaErrorKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KafkaErrorKind::Transport => "transport",
            KafkaErrorKind::Auth => "auth",
            KafkaErrorKind::Produce => "produce",
            KafkaErrorKind::Consume => "consume",
            KafkaErrorKind::Admin => "admin",
            KafkaErrorKind::Other => "other",
        }
    }
}

/// What chiprisk produced, for `chiprisk_kafka_produced_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducedKind {
    DeadLetter,
    ScoreUpdate,
}

impl ProducedKind {
    /// Every kind, in declaration order (`kind as usize` indexes it).
    pub const ALL: [ProducedKind; 2] = [ProducedKind::DeadLetter, ProducedKind::ScoreUpdate];

    pub fn as_str(self) -> &'static str {
        match self {
            ProducedKind::DeadLetter => "dead_letter",
            ProducedKind::ScoreUpdate => "score_update",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    kafka: KafkaMetrics,
    /// `chiprisk_events_total` by `EventType as usize`, then
    /// `EventOutcome as usize`: no label lookup per event.
    events_by: Vec<[IntCounter; 2]>,
    rejected: IntCounterVec,
    processing: Histogram,
    latency: Histogram,
    rebuilt: IntCounter,
    rebuild_left: IntGaugeVec,
}

impl Metrics {
    /// Registers every metric; event and rejection series are created up
    /// front so that they exist (at zero) from the first scrape.
    pub fn new() -> Self {
        let registry = Registry::new();
        let reg = |c: Box<dyn prometheus::core::Collector>| registry.register(c).expect("metric names are unique");
        let events = IntCounterVec::new(F::EVENTS.opts(), F::EVENTS.labels).unwrap();
        let rejected = IntCounterVec::new(F::EVENTS_REJECTED.opts(), F::EVENTS_REJECTED.labels).unwrap();
        let processing =
            Histogram::with_opts(F::EVENT_PROCESSING.histogram_opts(&[1e-6, 5e-6, 2e-5, 1e-4, 5e-4, 2e-3, 1e-2, 5e-2]))
                .unwrap();
        let rebuilt = IntCounter::with_opts(F::REBUILD_MESSAGES.opts()).unwrap();
        let rebuild_left = optional_gauge(&F::REBUILD_REMAINING);
        let latency = Histogram::with_opts(F::EVENT_LATENCY.histogram_opts(&LATENCY_BUCKETS)).unwrap();
        let build = IntGaugeVec::new(F::BUILD_INFO.opts(), F::BUILD_INFO.labels).unwrap();
        build.with_label_values(&[env!("CARGO_PKG_VERSION"), env!("CHIPRISK_GIT_REVISION")]).set(1);
        // process_cpu_seconds_total, process_resident_memory_bytes,
        // process_open_fds, ... (Linux; nothing elsewhere).
        reg(Box::new(prometheus::process_collector::ProcessCollector::for_self()));
        // Beside process_resident_memory_bytes, for the memory alert.
        if let Some(limit) = super::memory::limit_bytes() {
            let g = prometheus::Gauge::with_opts(F::MEMORY_LIMIT.opts()).expect("a valid metric");
            g.set(limit as f64);
            reg(Box::new(g));
        }

        let events_by = EventType::ALL
            .iter()
            .map(|t| {
                [EventOutcome::Accepted, EventOutcome::Duplicate]
                    .map(|o| events.with_label_values(&[t.as_str(), o.as_str()]))
            })
            .collect();
        for r in RejectReason::ALL {
            rejected.with_label_values(&[r.as_str()]);
        }
        reg(Box::new(events.clone()));
        reg(Box::new(rejected.clone()));
        reg(Box::new(processing.clone()));
        reg(Box::new(latency.clone()));
        reg(Box::new(rebuilt.clone()));
        reg(Box::new(rebuild_left.clone()));
        reg(Box::new(build));
        let kafka = KafkaMetrics::register(&registry);
        Self { registry, kafka, events_by, rejected, processing, latency, rebuilt, rebuild_left }
    }

    pub fn event_applied(&self, kind: EventType, outcome: EventOutcome) {
        self.events_by[kind as usize][outcome as usize].inc();
    }

    pub fn event_rejected(&self, reason: RejectReason) {
        self.rejected.with_label_values(&[reason.as_str()]).inc();
    }

    pub fn observe_processing(&self, took: Duration) {
        self.processing.observe(took.as_secs_f64());
    }

    /// A batch of `events` took `took`: each is observed at the batch's average.
    pub fn observe_processing_batch(&self, took: Duration, events: usize) {
        let each = took.as_secs_f64() / events as f64;
        for _ in 0..events {
            self.processing.observe(each);
        }
    }

    pub fn observe_event_latency(&self, seconds: f64) {
        self.latency.observe(seconds);
    }

    /// A message of history was re-read (and is not counted as arriving).
    pub fn rebuilt(&self) {
        self.rebuilt.inc();
    }

    /// Messages left to rebuild; `None`: not known yet (no series).
    pub fn set_rebuild_left(&self, left: Option<u64>) {
        match left {
            Some(n) => self.rebuild_left.with_label_values(NO_LABELS).set(n as i64),
            None => self.rebuild_left.reset(),
        }
    }

    pub fn kafka(&self) -> &KafkaMetrics {
        &self.kafka
    }

    /// The Prometheus text exposition of every metric, with `scores`
    /// (built for this scrape, [`super::scores::families`]).
    pub fn render(&self, scores: Vec<prometheus::proto::MetricFamily>) -> String {
        let mut families = self.registry.gather();
        families.extend(scores);
        families.sort_by(|a, b| a.name().cmp(b.name()));
        let mut buf = Vec::new();
        TextEncoder::new().encode(&families, &mut buf).expect("text encoding cannot fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The one series of a gauge without labels that must be able to vanish
/// (a vector with no labels can drop it; a plain gauge cannot).
fn optional_gauge<P: prometheus::core::Atomic>(f: &Family) -> prometheus::core::GenericGaugeVec<P> {
    prometheus::core::GenericGaugeVec::new(f.opts(), &[]).expect("a valid metric")
}

/// The label values of [`optional_gauge`]'s one series.
const NO_LABELS: &[&str] = &[];

/// Raises an [`optional_gauge`] of a timestamp to `at`, never lowers it.
fn raise(gauge: &GaugeVec, at: f64) {
    let g = gauge.with_label_values(NO_LABELS);
    if at > g.get() {
        g.set(at);
    }
}

/// Buckets of the event latency histograms (seconds): fine around the
/// 50 ms goal, coarse beyond.
const LATENCY_BUCKETS: [f64; 16] =
    [0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The Kafka pipeline's metrics (registered with the others, in [`Metrics::new`]).
pub struct KafkaMetrics {
    consumed: IntCounter,
    /// By `ProducedKind as usize`.
    produced: [IntCounter; 2],
    dead_lettered: IntCounterVec,
    committed: IntCounter,
    errors: IntCounterVec,
    lag: IntGaugeVec,
    last_fetch: GaugeVec,
    caught_up: GaugeVec,
    newest_message: GaugeVec,
}

impl KafkaMetrics {
    fn register(registry: &Registry) -> Self {
        let counter = |f: &Family| {
            let c = IntCounterVec::new(f.opts(), f.labels).unwrap();
            registry.register(Box::new(c.clone())).expect("unique metric");
            c
        };
        let consumed = IntCounter::with_opts(F::KAFKA_CONSUMED.opts()).unwrap();
        registry.register(Box::new(consumed.clone())).expect("unique metric");
        let produced = counter(&F::KAFKA_PRODUCED);
        let dead_lettered = counter(&F::KAFKA_DEAD_LETTERED);
        let errors = counter(&F::KAFKA_ERRORS);
        let committed = IntCounter::with_opts(F::KAFKA_COMMITS.opts()).unwrap();
        registry.register(Box::new(committed.clone())).expect("unique metric");
        let lag = IntGaugeVec::new(F::KAFKA_LAG.opts(), F::KAFKA_LAG.labels).unwrap();
        registry.register(Box::new(lag.clone())).expect("unique metric");
        let gauge = |f: &Family| {
            let g = optional_gauge(f);
            registry.register(Box::new(g.clone())).expect("unique metric");
            g
        };
        let last_fetch = gauge(&F::KAFKA_LAST_FETCH);
        let caught_up = gauge(&F::KAFKA_CAUGHT_UP);
        let newest_message = gauge(&F::KAFKA_NEWEST_MESSAGE);
        for k in KafkaErrorKind::ALL {
            errors.with_label_values(&[k.as_str()]);
        }
        for r in RejectReason::ALL {
            dead_lettered.with_label_values(&[r.as_str()]);
        }
        let produced = ProducedKind::ALL.map(|o| produced.with_label_values(&[o.as_str()]));
        Self { consumed, produced, dead_lettered, committed, errors, lag, last_fetch, caught_up, newest_message }
    }

    pub fn consumed(&self, messages: u64) {
        self.consumed.inc_by(messages);
    }

    pub fn produced(&self, kind: ProducedKind) {
        self.produced[kind as usize].inc();
    }

    pub fn dead_lettered(&self, reason: RejectReason) {
        self.dead_lettered.with_label_values(&[reason.as_str()]).inc();
    }

    pub fn committed(&self) {
        self.committed.inc();
    }

    pub fn error(&self, kind: KafkaErrorKind) {
        self.errors.with_label_values(&[kind.as_str()]).inc();
    }

    /// The leaders of every event partition answered at `at` (Unix
    /// seconds); the gauge never goes back.
    pub fn fetched_at(&self, at: f64) {
        raise(&self.last_fetch, at);
    }

    /// Every event partition was read to its end at `at` (Unix seconds).
    pub fn caught_up_at(&self, at: f64) {
        raise(&self.caught_up, at);
    }

    /// The newest Kafka timestamp of a batch of messages (milliseconds),
    /// capped at now: a producer's clock ahead of ours must not hide a
    /// silence to come.
    pub fn message_timestamp(&self, newest_ms: Option<i64>) {
        if let Some(ms) = newest_ms {
            raise(&self.newest_message, (ms as f64 / 1000.0).min(Timestamp::now().as_unix_seconds()));
        }
    }

    /// Sets the lag of one partition.
    pub fn set_lag(&self, topic: &str, partition: i32, lag: u64) {
        self.lag.with_label_values(&[topic, &partition.to_string()]).set(lag as i64);
    }
}
