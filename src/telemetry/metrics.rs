//! Every metric chiprisk exports, registered in one place. Callers use the
//! typed methods; label values come only from enums and the vendor catalog.

use crate::event::{EventType, RejectReason, Timestamp};
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
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
        let events = IntCounterVec::new(
            Opts::new(
                "chiprisk_events_total",
                "Events that arrived while this process ran, by type and outcome (accepted, duplicate); \
                 history re-read at start is counted in chiprisk_rebuild_messages_total instead",
            ),
            &["type", "outcome"],
        )
        .unwrap();
        let rejected = IntCounterVec::new(
            Opts::new(
                "chiprisk_events_rejected_total",
                "Events refused at decoding, by reason (arrived while this process ran)",
            ),
            &["reason"],
        )
        .unwrap();
        let processing = Histogram::with_opts(
            HistogramOpts::new(
                "chiprisk_event_processing_duration_seconds",
                "Time to decode, validate and apply one event (Kafka: the average over its batch of messages)",
            )
            .buckets(vec![1e-6, 5e-6, 2e-5, 1e-4, 5e-4, 2e-3, 1e-2, 5e-2]),
        )
        .unwrap();
        let rebuilt = IntCounter::new(
            "chiprisk_rebuild_messages_total",
            "Messages of history re-read from the event log at start (not counted in chiprisk_events_total)",
        )
        .unwrap();
        let rebuild_left = optional_gauge(
            "chiprisk_rebuild_remaining_messages",
            "Messages left to read before the scores are whole; 0 once ready (absent until the end of the log is known)",
        );
        let latency = Histogram::with_opts(
            HistogramOpts::new(
                "chiprisk_event_latency_seconds",
                "From an event's Kafka timestamp to its effect on the scores, or to finding it a duplicate \
                 (events that arrived while this process ran; each delivery once)",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .unwrap();
        let build =
            IntGaugeVec::new(Opts::new("chiprisk_build_info", "Build information; always 1"), &["version", "revision"])
                .unwrap();
        build.with_label_values(&[env!("CARGO_PKG_VERSION"), env!("CHIPRISK_GIT_REVISION")]).set(1);
        // process_cpu_seconds_total, process_resident_memory_bytes,
        // process_open_fds, ... (Linux; nothing elsewhere).
        reg(Box::new(prometheus::process_collector::ProcessCollector::for_self()));
        // Beside process_resident_memory_bytes, for the memory alert.
        if let Some(limit) = super::memory::limit_bytes() {
            let g = prometheus::Gauge::new(
                "chiprisk_memory_limit_bytes",
                "The container's memory limit (its cgroup's); absent where there is none",
            )
            .expect("a valid metric");
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
fn optional_gauge<P: prometheus::core::Atomic>(name: &str, help: &str) -> prometheus::core::GenericGaugeVec<P> {
    prometheus::core::GenericGaugeVec::new(Opts::new(name, help), &[]).expect("a valid metric")
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
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).unwrap();
            registry.register(Box::new(c.clone())).expect("unique metric");
            c
        };
        let consumed = IntCounter::new(
            "chiprisk_kafka_messages_consumed_total",
            "Messages consumed from the event topics (history re-read at start included)",
        )
        .unwrap();
        registry.register(Box::new(consumed.clone())).expect("unique metric");
        let produced = counter(
            "chiprisk_kafka_produced_total",
            "Records produced and acknowledged by the broker, by output (dead_letter, score_update)",
            &["output"],
        );
        let dead_lettered = counter(
            "chiprisk_kafka_dead_lettered_total",
            "Messages sent to the dead-letter topic, by reason",
            &["reason"],
        );
        let errors = counter("chiprisk_kafka_errors_total", "Kafka errors, by kind", &["kind"]);
        let committed =
            IntCounter::new("chiprisk_kafka_offset_commits_total", "Successful offset commits to the consumer group")
                .unwrap();
        registry.register(Box::new(committed.clone())).expect("unique metric");
        let lag = IntGaugeVec::new(
            Opts::new(
                "chiprisk_kafka_consumer_lag",
                "Messages between this process's position and the end of each event partition",
            ),
            &["topic", "partition"],
        )
        .unwrap();
        registry.register(Box::new(lag.clone())).expect("unique metric");
        let gauge = |name: &str, help: &str| {
            let g = optional_gauge(name, help);
            registry.register(Box::new(g.clone())).expect("unique metric");
            g
        };
        let last_fetch = gauge(
            "chiprisk_kafka_last_fetch_timestamp_seconds",
            "When the leader of every event partition last answered this process (Unix seconds): \
             when the Kafka loop began until they first do; absent without Kafka",
        );
        let caught_up = gauge(
            "chiprisk_kafka_caught_up_timestamp_seconds",
            "When this process last had every event partition read to its end (Unix seconds); \
             absent until it first has. time() minus it bounds how late the scores are",
        );
        let newest_message = gauge(
            "chiprisk_kafka_newest_message_timestamp_seconds",
            "Kafka timestamp of the newest message read from the event topics, history included \
             (Unix seconds; a timestamp in the future counts as now)",
        );
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
