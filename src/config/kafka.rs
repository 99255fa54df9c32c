//! `kafka.*` configuration.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Kafka source and sinks. Setting `brokers` switches `chiprisk run` from
/// the event file to Kafka.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// Bootstrap servers (`host:port,host:port`). Unset: Kafka is off.
    pub brokers: Option<String>,
    /// Topics of raw events. Every replica reads every partition of them
    /// from the beginning: they are the log the scores are rebuilt from.
    pub topics: Vec<String>,
    /// Consumer group that holds the committed offsets: the position up to
    /// which the events' outputs (dead letters, score updates) have been
    /// produced, so that a restart does not produce them again. Replicas
    /// share it; none joins it as a member (each reads every partition).
    pub group_id: String,
    /// Score updates (JSON, key = vendor id). Empty: not published.
    pub output_topic: String,
    /// Rejected messages with their original bytes and reason headers.
    /// Empty: rejected messages are only counted and logged.
    pub dead_letter_topic: String,
    /// Create missing topics at start (Admin API): event topics keep
    /// everything (`retention.ms=-1`, `retention.bytes=-1`), the score topic
    /// is compacted by vendor.
    pub create_topics: bool,
    /// Partitions of each topic chiprisk creates.
    pub partitions: i32,
    /// Replication factor of topics chiprisk creates; -1: the broker's
    /// `default.replication.factor` (Kafka 2.4 and later). The event topics
    /// are the source of truth every replica rebuilds from: chiprisk warns at
    /// start when one has fewer than 2 replicas.
    pub replication_factor: i32,
    /// Start even if an event topic lets the broker delete events (finite
    /// `retention.ms` or `retention.bytes` with `cleanup.policy=delete`).
    /// Scores then forget what the broker deletes, at the next restart.
    pub accept_history_loss: bool,
    /// Most messages one turn of the loop reads and processes before their
    /// outputs are awaited and their offsets stored.
    pub batch_size: usize,
    /// On shutdown, time allowed to finish deliveries and commit
    /// (milliseconds, or `"5s"`).
    #[serde(with = "super::duration::millis")]
    pub drain_timeout_ms: Duration,
    /// Extra librdkafka properties (`security.protocol`, `sasl.mechanism`, ...).
    /// Values of secret-looking keys (password, secret, token, ...) are
    /// redacted wherever chiprisk prints them.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// librdkafka properties read from files at start, for secrets
    /// (`sasl.password = "/var/run/secrets/kafka/password"`). Never printed.
    #[serde(default)]
    pub properties_from_files: BTreeMap<String, PathBuf>,
}

impl Default for KafkaSettings {
    fn default() -> Self {
        Self {
            brokers: None,
            topics: vec!["chiprisk.events".into()],
            group_id: "chiprisk".into(),
            output_topic: "chiprisk.scores".into(),
            dead_letter_topic: "chiprisk.dead-letter".into(),
            create_topics: true,
            partitions: 3,
            replication_factor: -1,
            accept_history_loss: false,
            batch_size: 2000,
            drain_timeout_ms: Duration::from_secs(5),
            properties: BTreeMap::new(),
            properties_from_files: BTreeMap::new(),
        }
    }
}

/// The smallest `message.max.bytes` chiprisk's producer works with.
const MIN_RECORD: usize = 64 * 1024;

/// The librdkafka property a `kafka.properties` key names: `_` may stand for
/// `.` (environment variables cannot hold dots).
pub fn librdkafka_name(key: &str) -> String {
    key.replace('_', ".")
}

/// librdkafka properties whose values are secrets: those librdkafka itself
/// marks sensitive (`_RK_SENSITIVE` in its `rdkafka_conf.c`), and any name
/// that looks like one (a password, secret, passphrase, token, PEM, JAAS
/// configuration, or a key other than a key file's path), however the key
/// was written (`ssl_key_pem` from the environment is `ssl.key.pem`).
pub fn is_secret(key: &str) -> bool {
    const SENSITIVE: &[&str] = &[
        "sasl.password",
        "sasl.oauthbearer.config",
        "sasl.oauthbearer.client.secret",
        "sasl.oauthbearer.assertion.private.key.passphrase",
        "sasl.oauthbearer.assertion.private.key.pem",
        "ssl.key.password",
        "ssl.key.pem",
        "ssl.keystore.password",
        "ssl.key",
    ];
    let name = librdkafka_name(&key.to_ascii_lowercase());
    let looks_secret =
        ["password", "secret", "passphrase", "token", "pem", "jaas", "credential"].iter().any(|s| name.contains(s));
    let a_key = name.split('.').any(|part| part == "key") && !name.ends_with(".location") && !name.ends_with(".file");
    SENSITIVE.contains(&name.as_str()) || looks_secret || a_key
}

impl KafkaSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.brokers.as_deref().is_some_and(|b| b.trim().is_empty()) {
            return Err("kafka.brokers must not be empty when set".into());
        }
        if self.topics.is_empty() || self.topics.iter().any(|t| t.trim().is_empty()) {
            return Err("kafka.topics must name at least one topic".into());
        }
        if self.group_id.trim().is_empty() {
            return Err("kafka.group_id must not be empty".into());
        }
        if !(1..=10_000).contains(&self.partitions) {
            return Err("kafka.partitions must be within 1..=10000".into());
        }
        if self.replication_factor != -1 && !(1..=i32::from(i16::MAX)).contains(&self.replication_factor) {
            return Err("kafka.replication_factor must be -1 (the broker's default) or within 1..=32767".into());
        }
        if self.batch_size == 0 || self.batch_size > 100_000 {
            return Err("kafka.batch_size must be within 1..=100000".into());
        }
        if self.drain_timeout_ms > Duration::from_secs(60) {
            return Err("kafka.drain_timeout_ms must be at most 60000".into());
        }
        if self.largest_record() < MIN_RECORD {
            return Err(format!(
                "kafka.properties.\"message.max.bytes\" must be at least {MIN_RECORD}: a dead letter carries up to \
                 that many bytes of the message it rejects, with its headers"
            ));
        }
        Ok(())
    }

    /// The largest record the producer sends: librdkafka's
    /// `message.max.bytes` as `kafka.properties` sets it, or its default.
    pub fn largest_record(&self) -> usize {
        self.properties
            .iter()
            .find(|(k, _)| librdkafka_name(k) == "message.max.bytes")
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(1_000_000)
    }

    /// Whether `kafka.properties` or `kafka.properties_from_files` say which
    /// certificate authorities to trust.
    pub fn sets_ca(&self) -> bool {
        let ca = |k: &String| matches!(librdkafka_name(k).as_str(), "ssl.ca.location" | "ssl.ca.pem");
        self.properties.keys().any(ca) || self.properties_from_files.keys().any(ca)
    }

    /// A copy safe to print: secret property values replaced (see
    /// [`is_secret`]).
    pub fn redacted(&self) -> Self {
        let mut copy = self.clone();
        for (k, v) in copy.properties.iter_mut() {
            if is_secret(k) {
                *v = "<redacted>".into();
            }
        }
        copy
    }
}
