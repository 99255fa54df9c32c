//! Every metric family chiprisk exports, once: its name, type, labels,
//! help, when it has series, and whether `chiprisk backfill` can compute
//! it for the past. The registration code ([`super::metrics`],
//! [`super::scores`]), the backfill ([`super::backfill`]) and the tests
//! that hold the README's metrics table and the alert rules to the
//! exports all read this table. Adding a family is one entry here (and the
//! code that sets it); `tests/readme_tables.rs` fails until the README
//! says it.

use prometheus::{HistogramOpts, Opts};

/// A family's Prometheus type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Counter,
    Gauge,
    Histogram,
}

/// When a family has series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// From the first scrape.
    Always,
    /// Once the scores are whole (a rebuilding replica shows none).
    Whole,
    /// Once the scores are whole, and only while a policy change of the
    /// last `POLICY_CHANGE_HORIZON_DAYS` exists.
    RecentChange,
    /// Once the source knows where the event log ends (a file at once,
    /// Kafka once the watermarks are read).
    LogEndKnown,
    /// With Kafka as the event source.
    Kafka,
    /// Where the container's cgroup sets a memory limit.
    MemoryLimit,
}

/// One metric family.
#[derive(Debug)]
pub struct Family {
    pub name: &'static str,
    pub kind: Type,
    pub labels: &'static [&'static str],
    pub help: &'static str,
    pub shown: Shown,
    /// Whether `chiprisk backfill` writes it: whether it can be computed
    /// as of a past time (the others say what the process holds now).
    pub backfilled: bool,
}

impl Family {
    pub fn opts(&self) -> Opts {
        Opts::new(self.name, self.help)
    }

    pub fn histogram_opts(&self, buckets: &[f64]) -> HistogramOpts {
        HistogramOpts::new(self.name, self.help).buckets(buckets.to_vec())
    }
}

/// Declares each family as a constant, and [`ALL`] in the same order.
macro_rules! families {
    ($(
        $(#[$doc:meta])*
        $id:ident: $kind:ident $shown:ident $backfilled:literal $name:literal [$($label:literal),*]
        $help:expr;
    )*) => {
        $(
            $(#[$doc])*
            pub const $id: Family = Family {
                name: $name,
                kind: Type::$kind,
                labels: &[$($label),*],
                help: $help,
                shown: Shown::$shown,
                backfilled: $backfilled,
            };
        )*
        /// Every family; `chiprisk backfill` writes the backfilled ones in
        /// this order.
        pub const ALL: &[&Family] = &[$(&$id),*];
    };
}

families! {
    // The scores (built for each scrape by `scores::families`).
    VENDOR_RISK_SCORE: Gauge Whole true "chiprisk_vendor_risk_score" ["vendor"]
        "China-market risk score of the vendor, 0 to 100, as of the sample's time";
    VENDOR_RISK_COMPONENT_PRESSURE: Gauge Whole true "chiprisk_vendor_risk_component_pressure" ["vendor", "component"]
        "Pressure of one score component for the vendor (the score saturates their sum)";
    VENDOR_BANS_IN_FORCE: Gauge Whole true "chiprisk_vendor_bans_in_force" ["vendor", "kind"]
        "Bans in force against the vendor, by kind (one per product or vendor-wide)";
    VENDOR_BAN_INFO: Gauge Whole true "chiprisk_vendor_ban_info" ["vendor", "kind", "product", "event_id", "title"]
        "One series per ban in force (per vendor, kind and product): the ban event's time in Unix seconds; \
         labels carry the event id and title";
    VENDOR_BAN_INFO_FOLDED: Gauge Whole false "chiprisk_vendor_ban_info_folded" ["vendor", "kind"]
        "Bans in force without their own chiprisk_vendor_ban_info series: beyond the newest 10 per vendor and kind";
    VENDOR_LAST_LIFT_INFO: Gauge Whole true "chiprisk_vendor_last_lift_info" ["vendor", "kind", "product", "event_id", "title"]
        "The latest lift per vendor and kind that ended a ban: its event time in Unix seconds; \
         labels carry the event id and title";
    POLICY_CHANGE_TIMESTAMP: Gauge RecentChange true "chiprisk_policy_change_timestamp_seconds"
        ["vendor", "kind", "change", "product", "event_id", "title", "source_url"]
        "One series per policy change (a ban imposed, or a lift that ended a ban) that occurred in the last 30 \
         days, per vendor: its event time in Unix seconds. The policy alerts fire on it";
    POLICY_CHANGES_FOLDED: Gauge Whole false "chiprisk_policy_changes_folded" ["vendor"]
        "Policy changes of the last 30 days without their own series: beyond the newest 10 per vendor";
    VENDOR_LAST_EVENT_TIMESTAMP: Gauge Whole true "chiprisk_vendor_last_event_timestamp_seconds" ["vendor"]
        "Event time (occurred_at) of the vendor's latest event, in Unix seconds";
    VENDOR_LAST_EVENT_INFO: Gauge Whole true "chiprisk_vendor_last_event_info" ["vendor", "type", "event_id", "title"]
        "The vendor's latest event (one series per vendor): its time in Unix seconds; labels carry type, id and title";
    // The process (registered once by `Metrics::new`).
    EVENT_LATENCY: Histogram Always false "chiprisk_event_latency_seconds" []
        "From an event's Kafka timestamp to its effect on the scores, or to finding it a duplicate \
         (events that arrived while this process ran; each delivery once)";
    EVENTS: Counter Always false "chiprisk_events_total" ["type", "outcome"]
        "Events that arrived while this process ran, by type and outcome (accepted, duplicate); \
         history re-read at start is counted in chiprisk_rebuild_messages_total instead";
    EVENTS_REJECTED: Counter Always false "chiprisk_events_rejected_total" ["reason"]
        "Events refused at decoding, by reason (arrived while this process ran)";
    EVENT_PROCESSING: Histogram Always false "chiprisk_event_processing_duration_seconds" []
        "Time to decode, validate and apply one event (Kafka: the average over its batch of messages)";
    REBUILD_MESSAGES: Counter Always false "chiprisk_rebuild_messages_total" []
        "Messages of history re-read from the event log at start (not counted in chiprisk_events_total)";
    REBUILD_REMAINING: Gauge LogEndKnown false "chiprisk_rebuild_remaining_messages" []
        "Messages left to read before the scores are whole; 0 once ready (absent until the end of the log is known)";
    ENGINE_EVENTS: Gauge Whole false "chiprisk_engine_events" []
        "Distinct events held by the scoring engine (absent while rebuilding)";
    ENGINE_HELD_BYTES: Gauge Whole false "chiprisk_engine_held_bytes" []
        "Estimated heap bytes the scoring engine holds for its events (absent while rebuilding); \
         the process's resident memory is somewhat more";
    READY: Gauge Always false "chiprisk_ready" []
        "Whether the scores are whole: 1 once the whole event log has been read, 0 while rebuilding";
    SCORES_AS_OF: Gauge Whole false "chiprisk_scores_as_of_timestamp_seconds" []
        "Time the exported scores were computed for (absent while rebuilding)";
    BUILD_INFO: Gauge Always false "chiprisk_build_info" ["version", "revision"]
        "Build information; always 1";
    // Kafka (registered by `KafkaMetrics::register`; series only in Kafka mode).
    KAFKA_CONSUMED: Counter Kafka false "chiprisk_kafka_messages_consumed_total" []
        "Messages consumed from the event topics (history re-read at start included)";
    KAFKA_PRODUCED: Counter Kafka false "chiprisk_kafka_produced_total" ["output"]
        "Records produced and acknowledged by the broker, by output (dead_letter, score_update)";
    KAFKA_DEAD_LETTERED: Counter Kafka false "chiprisk_kafka_dead_lettered_total" ["reason"]
        "Messages sent to the dead-letter topic, by reason";
    KAFKA_COMMITS: Counter Kafka false "chiprisk_kafka_offset_commits_total" []
        "Successful offset commits to the consumer group";
    KAFKA_ERRORS: Counter Kafka false "chiprisk_kafka_errors_total" ["kind"]
        "Kafka errors, by kind";
    KAFKA_LAG: Gauge Kafka false "chiprisk_kafka_consumer_lag" ["topic", "partition"]
        "Messages between this process's position and the end of each event partition";
    KAFKA_LAST_FETCH: Gauge Kafka false "chiprisk_kafka_last_fetch_timestamp_seconds" []
        "When the leader of every event partition last answered this process (Unix seconds): \
         when the Kafka loop began until they first do; absent without Kafka";
    KAFKA_CAUGHT_UP: Gauge Kafka false "chiprisk_kafka_caught_up_timestamp_seconds" []
        "When this process last had every event partition read to its end (Unix seconds); \
         absent until it first has. time() minus it bounds how late the scores are";
    KAFKA_NEWEST_MESSAGE: Gauge Kafka false "chiprisk_kafka_newest_message_timestamp_seconds" []
        "Kafka timestamp of the newest message read from the event topics, history included \
         (Unix seconds; a timestamp in the future counts as now)";
    MEMORY_LIMIT: Gauge MemoryLimit false "chiprisk_memory_limit_bytes" []
        "The container's memory limit (its cgroup's); absent where there is none";
}

/// The family named `name`, if chiprisk exports one.
pub fn find(name: &str) -> Option<&'static Family> {
    ALL.iter().copied().find(|f| f.name == name)
}

/// The families `chiprisk backfill` writes, in table order.
pub fn backfilled() -> impl Iterator<Item = &'static Family> {
    ALL.iter().copied().filter(|f| f.backfilled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_follow_the_conventions() {
        for (i, f) in ALL.iter().enumerate() {
            assert!(ALL[..i].iter().all(|g| g.name != f.name), "{} twice", f.name);
            assert!(f.name.starts_with("chiprisk_"), "{}", f.name);
            match f.kind {
                Type::Counter => assert!(f.name.ends_with("_total"), "{}", f.name),
                Type::Gauge | Type::Histogram => assert!(!f.name.ends_with("_total"), "{}", f.name),
            }
            assert!(f.backfilled <= (f.kind == Type::Gauge), "only gauges can be backfilled");
        }
    }
}
