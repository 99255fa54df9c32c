//! Every metric chiprisk exports, registered in one place. Callers use the
//! typed methods; label values come only from enums and the vendor catalog.

use crate::engine::Engine;
use crate::event::{BanKind, Component, EventType, RejectReason, Timestamp};
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
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

/// Event text for a label value: at most 200 characters.
fn label_text(s: &str) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &s[..i]).into(),
        None => s.into(),
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
    score: GaugeVec,
    component: GaugeVec,
    bans: IntGaugeVec,
    ban_info: GaugeVec,
    lift_info: GaugeVec,
    event_info: GaugeVec,
    last_event: GaugeVec,
    /// `chiprisk_events_total` by `EventType as usize`, then
    /// `EventOutcome as usize`: no label lookup per event.
    events_by: Vec<[IntCounter; 2]>,
    rejected: IntCounterVec,
    processing: Histogram,
    ready: IntGauge,
    latency: Histogram,
    /// Series without labels that exist only while the scores are whole
    /// (a vector with no labels can drop its one series).
    events_held: IntGaugeVec,
    scored_at: GaugeVec,
    rebuilt: IntCounter,
    rebuild_left: IntGaugeVec,
}

impl Metrics {
    /// Registers every metric; event and rejection series are created up
    /// front so that they exist (at zero) from the first scrape.
    pub fn new() -> Self {
        let registry = Registry::new();
        let reg = |c: Box<dyn prometheus::core::Collector>| registry.register(c).expect("metric names are unique");
        let score = GaugeVec::new(
            Opts::new("chiprisk_vendor_risk_score", "China-market risk score of the vendor, 0 to 100, as of now"),
            &["vendor"],
        )
        .unwrap();
        let component = GaugeVec::new(
            Opts::new(
                "chiprisk_vendor_risk_component_pressure",
                "Pressure of one score component for the vendor, as of now (the score saturates their sum)",
            ),
            &["vendor", "component"],
        )
        .unwrap();
        let bans = IntGaugeVec::new(
            Opts::new(
                "chiprisk_vendor_bans_in_force",
                "Bans in force against the vendor, by kind (one per product or vendor-wide)",
            ),
            &["vendor", "kind"],
        )
        .unwrap();
        let ban_info = GaugeVec::new(
            Opts::new(
                "chiprisk_vendor_ban_info",
                "One series per ban in force (per vendor, kind and product): the ban event's time in Unix seconds; \
                 labels carry the event id and title for alerts",
            ),
            &["vendor", "kind", "product", "event_id", "title"],
        )
        .unwrap();
        let lift_info = GaugeVec::new(
            Opts::new(
                "chiprisk_vendor_last_lift_info",
                "The latest lift per vendor and kind that ended a ban: its event time in Unix seconds; \
                 labels carry the event id and title for alerts",
            ),
            &["vendor", "kind", "product", "event_id", "title"],
        )
        .unwrap();
        let event_info = GaugeVec::new(
            Opts::new(
                "chiprisk_vendor_last_event_info",
                "The vendor's latest event (one series per vendor): its time in Unix seconds; labels carry type, id and title",
            ),
            &["vendor", "type", "event_id", "title"],
        )
        .unwrap();
        let last_event = GaugeVec::new(
            Opts::new(
                "chiprisk_vendor_last_event_timestamp_seconds",
                "Event time (occurred_at) of the vendor's latest event, in Unix seconds",
            ),
            &["vendor"],
        )
        .unwrap();
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
        let ready = IntGauge::new(
            "chiprisk_ready",
            "Whether the scores are whole: 1 once the whole event log has been read, 0 while rebuilding",
        )
        .unwrap();
        let events_held = optional_gauge(
            "chiprisk_engine_events",
            "Distinct events held by the scoring engine (absent while rebuilding)",
        );
        let scored_at = optional_gauge(
            "chiprisk_scores_as_of_timestamp_seconds",
            "Time the exported scores were computed for (absent while rebuilding)",
        );
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
            IntGaugeVec::new(Opts::new("chiprisk_build_info", "Build information; always 1"), &["version"]).unwrap();
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);

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
        reg(Box::new(score.clone()));
        reg(Box::new(component.clone()));
        reg(Box::new(bans.clone()));
        reg(Box::new(ban_info.clone()));
        reg(Box::new(lift_info.clone()));
        reg(Box::new(event_info.clone()));
        reg(Box::new(last_event.clone()));
        reg(Box::new(events.clone()));
        reg(Box::new(rejected.clone()));
        reg(Box::new(processing.clone()));
        reg(Box::new(ready.clone()));
        reg(Box::new(latency.clone()));
        reg(Box::new(events_held.clone()));
        reg(Box::new(scored_at.clone()));
        reg(Box::new(rebuilt.clone()));
        reg(Box::new(rebuild_left.clone()));
        reg(Box::new(build));
        let kafka = KafkaMetrics::register(&registry);
        Self {
            registry,
            kafka,
            score,
            component,
            bans,
            ban_info,
            lift_info,
            event_info,
            last_event,
            events_by,
            rejected,
            processing,
            ready,
            latency,
            events_held,
            scored_at,
            rebuilt,
            rebuild_left,
        }
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

    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
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

    /// Removes every series that describes the scores (while rebuilding).
    pub fn clear_scores(&self) {
        for g in [&self.score, &self.component, &self.last_event, &self.ban_info, &self.lift_info, &self.event_info] {
            g.reset();
        }
        self.bans.reset();
        self.events_held.reset();
        self.scored_at.reset();
    }

    /// Sets the score gauges of every vendor as of `at`.
    pub fn record_scores(&self, engine: &Engine, at: Timestamp) {
        let catalog = engine.catalog();
        self.clear_scores();
        for (vendor, s) in engine.scores_at(at) {
            let id = &catalog.get(vendor).id;
            self.score.with_label_values(&[id]).set(s.score);
            for c in Component::ALL {
                self.component.with_label_values(&[id, c.as_str()]).set(s.component(c));
            }
            let bans = engine.bans_in_force(vendor, at);
            for k in BanKind::ALL {
                let n = bans.iter().filter(|b| b.kind == k).count();
                self.bans.with_label_values(&[id, k.as_str()]).set(n as i64);
            }
            // Bounded by the bans in force and one lift per kind: not by the event stream.
            for b in &bans {
                let product = b.product.as_deref().unwrap_or("all");
                let title = label_text(b.title.as_deref().unwrap_or(""));
                self.ban_info
                    .with_label_values(&[id, b.kind.as_str(), product, &b.event_id, &title])
                    .set(b.since.as_unix_seconds());
            }
            for l in engine.last_lifts(vendor, at) {
                let product = l.product.as_deref().unwrap_or("all");
                let title = label_text(l.title.as_deref().unwrap_or(""));
                self.lift_info
                    .with_label_values(&[id, l.kind.as_str(), product, &l.event_id, &title])
                    .set(l.occurred_at.as_unix_seconds());
            }
            if let Some((kind, event_id, title, t)) = engine.last_event(vendor) {
                self.last_event.with_label_values(&[id]).set(t.as_unix_seconds());
                let title = label_text(title.as_deref().unwrap_or(""));
                self.event_info.with_label_values(&[id, kind.as_str(), &event_id, &title]).set(t.as_unix_seconds());
            }
        }
        self.events_held.with_label_values(NO_LABELS).set(engine.stats().accepted as i64);
        self.scored_at.with_label_values(NO_LABELS).set(at.as_unix_seconds());
    }

    pub fn kafka(&self) -> &KafkaMetrics {
        &self.kafka
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf).expect("text encoding cannot fail");
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
        for k in KafkaErrorKind::ALL {
            errors.with_label_values(&[k.as_str()]);
        }
        for r in RejectReason::ALL {
            dead_lettered.with_label_values(&[r.as_str()]);
        }
        let produced = ProducedKind::ALL.map(|o| produced.with_label_values(&[o.as_str()]));
        Self { consumed, produced, dead_lettered, committed, errors, lag }
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

    /// Sets the lag of one partition.
    pub fn set_lag(&self, topic: &str, partition: i32, lag: u64) {
        self.lag.with_label_values(&[topic, &partition.to_string()]).set(lag as i64);
    }
}
