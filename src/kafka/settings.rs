//! `kafka.*` configuration.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Kafka source and sinks. Setting `brokers` switches `chiprisk run` from
/// the event file to Kafka.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// Bootstrap servers (`host:port,host:port`). Unset: Kafka is off.
    pub brokers: Option<String>,
    /// Topics of raw events to consume.
    pub topics: Vec<String>,
    /// Consumer group; replicas in one group share the work.
    pub group_id: String,
    /// Score updates (JSON, key = vendor id). Empty: not published.
    pub output_topic: String,
    /// Rejected messages with their original bytes and reason headers.
    /// Empty: rejected messages are only counted and logged.
    pub dead_letter_topic: String,
    /// Internal topic of accepted events routed by vendor (see README,
    /// "Scaling out"). Needs unlimited retention.
    pub repartition_topic: String,
    /// Partitions of the repartition topic when chiprisk creates it; the
    /// most replicas that can share the scoring. Never change it afterwards.
    pub repartition_partitions: i32,
    /// Most bytes of routed copies sent as one record of the repartition
    /// topic (a bundle); a copy larger than this travels alone. Must stay
    /// below the broker's `message.max.bytes`. 0: one record per copy, as
    /// versions before bundles wrote and can read (use it while such
    /// replicas still run in the group).
    pub repartition_bundle_bytes: usize,
    /// Create missing topics at start (Admin API).
    pub create_topics: bool,
    /// Replication factor of topics chiprisk creates.
    pub replication_factor: i32,
    /// Most messages one turn of the loop reads and processes (their offsets
    /// are stored together once their outputs are acknowledged).
    pub batch_size: usize,
    /// Least time between two rounds of score updates: vendors touched in
    /// between are scored once, and their changed scores published. This
    /// bounds the output topic's rate, not the scores' freshness (the
    /// scoreboard is current at once).
    pub score_update_interval_ms: u64,
    /// On shutdown or revocation, time allowed to finish the batch and commit;
    /// must be shorter than `session_timeout_ms`.
    pub drain_timeout_ms: u64,
    /// Consumer session timeout.
    pub session_timeout_ms: u64,
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
            repartition_topic: "chiprisk.events.by-vendor".into(),
            repartition_partitions: 12,
            repartition_bundle_bytes: 256 * 1024,
            create_topics: true,
            replication_factor: 1,
            batch_size: 2000,
            score_update_interval_ms: 250,
            drain_timeout_ms: 5_000,
            session_timeout_ms: 30_000,
            properties: BTreeMap::new(),
            properties_from_files: BTreeMap::new(),
        }
    }
}

/// Bytes a routed copy may need besides its event: the record's key,
/// headers and framing, and a bundle's framing, with room to spare.
const COPY_FRAMING: usize = 1024;

/// The librdkafka property a `kafka.properties` key names: `_` may stand for
/// `.` (environment variables cannot hold dots).
pub fn librdkafka_name(key: &str) -> String {
    key.replace('_', ".")
}

/// librdkafka properties whose values are secrets.
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "secret", "sasl.jaas", "ssl.key.pem", "token"].iter().any(|s| k.contains(s))
}

impl KafkaSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.brokers.as_deref().is_some_and(|b| b.trim().is_empty()) {
            return Err("kafka.brokers must not be empty when set".into());
        }
        if self.topics.is_empty() || self.topics.iter().any(|t| t.trim().is_empty()) {
            return Err("kafka.topics must name at least one topic".into());
        }
        if self.group_id.trim().is_empty() || self.repartition_topic.trim().is_empty() {
            return Err("kafka.group_id and kafka.repartition_topic must not be empty".into());
        }
        if !(1..=10_000).contains(&self.repartition_partitions) {
            return Err("kafka.repartition_partitions must be within 1..=10000".into());
        }
        if self.batch_size == 0 || self.batch_size > 100_000 {
            return Err("kafka.batch_size must be within 1..=100000".into());
        }
        if self.repartition_bundle_bytes > 900_000 {
            return Err(
                "kafka.repartition_bundle_bytes must be at most 900000 (below librdkafka's message.max.bytes, 1000000)"
                    .into(),
            );
        }
        if self.score_update_interval_ms > 60_000 {
            return Err("kafka.score_update_interval_ms must be at most 60000".into());
        }
        if self.drain_timeout_ms >= self.session_timeout_ms {
            return Err(format!(
                "kafka.drain_timeout_ms ({}) must be shorter than kafka.session_timeout_ms ({})",
                self.drain_timeout_ms, self.session_timeout_ms
            ));
        }
        Ok(())
    }
}

impl KafkaSettings {
    /// The largest record the producer sends: librdkafka's
    /// `message.max.bytes` as `kafka.properties` sets it, or its default.
    pub fn largest_record(&self) -> usize {
        self.properties
            .iter()
            .find(|(k, _)| librdkafka_name(k) == "message.max.bytes")
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(1_000_000)
    }

    /// Checks that an event of `max_event_bytes` (`limits.max_event_bytes`)
    /// can be routed: it is copied to the repartition topic as it came, and
    /// must fit in a record the producer may send. Kafka off: nothing to check.
    pub fn check_event_fits(&self, max_event_bytes: usize) -> Result<(), String> {
        if self.brokers.is_none() {
            return Ok(());
        }
        let largest = self.largest_record();
        if max_event_bytes + COPY_FRAMING <= largest {
            return Ok(());
        }
        Err(format!(
            "limits.max_event_bytes ({max_event_bytes}) does not fit in the largest record chiprisk's producer may \
             send (message.max.bytes, {largest}): raise kafka.properties.\"message.max.bytes\" (and the brokers' \
             limits) or lower limits.max_event_bytes"
        ))
    }

    /// A copy safe to print: secret property values replaced.
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn secrets_come_from_files_and_never_print() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "s3cret").unwrap();
        let mut s = KafkaSettings { brokers: Some("127.0.0.1:9092".into()), ..KafkaSettings::default() };
        s.properties.insert("security_protocol".into(), "SASL_SSL".into());
        s.properties.insert("sasl_password".into(), "from-env".into());
        s.properties_from_files.insert("sasl.username".into(), file.path().to_owned());
        let cfg = crate::kafka::client_config(&s).unwrap();
        assert_eq!(cfg.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(cfg.get("sasl.username"), Some("s3cret"), "read from the file, newline trimmed");
        let printed = format!("{:?}", s.redacted());
        assert!(!printed.contains("from-env") && printed.contains("<redacted>"), "{printed}");
        s.properties_from_files.insert("sasl.password".into(), "/no/such/secret".into());
        let e = crate::kafka::client_config(&s).unwrap_err();
        assert!(format!("{e:#}").contains("kafka.properties_from_files.sasl.password"), "{e:#}");
    }
}
