//! Every metric chiprisk exports, registered in one place. Callers use the
//! typed methods; label values come only from enums and the vendor catalog.

use crate::event::{BanKind, Component, EventType, RejectReason, Timestamp};
use crate::scoreboard::Scoreboard;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
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
    /// Consuming, committing or rebalancing failed.
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
    Route,
    DeadLetter,
    ScoreUpdate,
}

impl ProducedKind {
    /// Every kind, in declaration order (`kind as usize` indexes it).
    pub const ALL: [ProducedKind; 3] = [ProducedKind::Route, ProducedKind::DeadLetter, ProducedKind::ScoreUpdate];

    pub fn as_str(self) -> &'static str {
        match self {
            ProducedKind::Route => "route",
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
    events_held: IntGauge,
    scored_at: Gauge,
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
            Opts::new("chiprisk_events_total", "Decoded events by type and outcome (accepted, duplicate)"),
            &["type", "outcome"],
        )
        .unwrap();
        let rejected = IntCounterVec::new(
            Opts::new("chiprisk_events_rejected_total", "Events refused at decoding, by reason"),
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
        let ready =
            IntGauge::new("chiprisk_ready", "1 once the initial events are loaded and scores are live").unwrap();
        let events_held =
            IntGauge::new("chiprisk_engine_events", "Distinct events held by the scoring engine").unwrap();
        let scored_at =
            Gauge::new("chiprisk_scores_as_of_timestamp_seconds", "Time the exported scores were computed for")
                .unwrap();
        let latency = Histogram::with_opts(
            HistogramOpts::new(
                "chiprisk_event_latency_seconds",
                "From an event's Kafka timestamp to its effect on the scores, or to finding it a duplicate \
                 (live partitions only; each delivery once)",
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

    /// Sets the score gauges as of `at` for the vendors this process owns;
    /// series of vendors owned elsewhere (another replica) are removed.
    pub fn record_scores(&self, board: &Scoreboard, at: Timestamp) {
        let catalog = board.catalog();
        for g in [&self.score, &self.component, &self.last_event, &self.ban_info, &self.lift_info, &self.event_info] {
            g.reset();
        }
        self.bans.reset();
        for (vendor, s, engine) in board.scores_at(at) {
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
        self.events_held.set(board.events_held() as i64);
        self.scored_at.set(at.as_unix_seconds());
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

/// Buckets of the event latency histograms (seconds): fine around the
/// 50 ms goal, coarse beyond.
const LATENCY_BUCKETS: [f64; 16] =
    [0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The Kafka pipeline's metrics (registered with the others, in [`Metrics::new`]).
pub struct KafkaMetrics {
    /// By role: events (0), repartition (1).
    consumed: [IntCounter; 2],
    /// By `ProducedKind as usize`.
    produced: [IntCounter; 3],
    dead_lettered: IntCounterVec,
    committed: IntCounter,
    rebalances: IntCounterVec,
    errors: IntCounterVec,
    lag: IntGaugeVec,
    catching_up: IntGauge,
    read_latency: Histogram,
}

impl KafkaMetrics {
    fn register(registry: &Registry) -> Self {
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).unwrap();
            registry.register(Box::new(c.clone())).expect("unique metric");
            c
        };
        let consumed = counter(
            "chiprisk_kafka_messages_consumed_total",
            "Messages consumed, by topic role (events, repartition)",
            &["role"],
        );
        let produced = counter(
            "chiprisk_kafka_produced_total",
            "Records produced and acknowledged, by output (route: records of the repartition topic, most of them bundles of copies; dead_letter; score_update)",
            &["output"],
        );
        let dead_lettered = counter(
            "chiprisk_kafka_dead_lettered_total",
            "Messages sent to the dead-letter topic, by reason",
            &["reason"],
        );
        let rebalances = counter("chiprisk_kafka_rebalances_total", "Partition assignments and revocations", &["kind"]);
        let errors = counter("chiprisk_kafka_errors_total", "Kafka errors, by kind", &["kind"]);
        let committed =
            IntCounter::new("chiprisk_kafka_offset_commits_total", "Successful offset commits to the consumer group")
                .unwrap();
        registry.register(Box::new(committed.clone())).expect("unique metric");
        let lag = IntGaugeVec::new(
            Opts::new(
                "chiprisk_kafka_consumer_lag",
                "Messages behind the end of each assigned partition (librdkafka statistics)",
            ),
            &["topic", "partition"],
        )
        .unwrap();
        registry.register(Box::new(lag.clone())).expect("unique metric");
        let catching_up = IntGauge::new(
            "chiprisk_kafka_partitions_catching_up",
            "Repartition partitions still replaying history before going live",
        )
        .unwrap();
        registry.register(Box::new(catching_up.clone())).expect("unique metric");
        let read_latency = Histogram::with_opts(
            HistogramOpts::new(
                "chiprisk_kafka_read_latency_seconds",
                "From an event's Kafka timestamp to its being read from the events topic: the first of its \
                 two hops (chiprisk_event_latency_seconds covers both)",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .unwrap();
        registry.register(Box::new(read_latency.clone())).expect("unique metric");
        for k in KafkaErrorKind::ALL {
            errors.with_label_values(&[k.as_str()]);
        }
        for r in RejectReason::ALL {
            dead_lettered.with_label_values(&[r.as_str()]);
        }
        let consumed = ["events", "repartition"].map(|role| consumed.with_label_values(&[role]));
        let produced = ProducedKind::ALL.map(|o| produced.with_label_values(&[o.as_str()]));
        Self { consumed, produced, dead_lettered, committed, rebalances, errors, lag, catching_up, read_latency }
    }

    pub fn consumed(&self, repartition: bool) {
        self.consumed[usize::from(repartition)].inc();
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

    pub fn rebalanced(&self, assign: bool) {
        self.rebalances.with_label_values(&[if assign { "assign" } else { "revoke" }]).inc();
    }

    pub fn error(&self, kind: KafkaErrorKind) {
        self.errors.with_label_values(&[kind.as_str()]).inc();
    }

    /// Sets the lag of one partition; librdkafka's -1 ("unknown") is not exported.
    pub fn set_lag(&self, topic: &str, partition: i32, lag: i64) {
        let p = partition.to_string();
        if lag >= 0 {
            self.lag.with_label_values(&[topic, &p]).set(lag);
        } else {
            let _ = self.lag.remove_label_values(&[topic, &p]);
        }
    }

    /// Forgets lag series of partitions no longer assigned.
    pub fn clear_lag(&self) {
        self.lag.reset();
    }

    pub fn observe_read_latency(&self, seconds: f64) {
        self.read_latency.observe(seconds);
    }

    pub fn set_catching_up(&self, partitions: usize) {
        self.catching_up.set(partitions as i64);
    }
}
