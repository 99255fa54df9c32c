//! The librdkafka clients' configuration and callbacks: chiprisk's
//! defaults, statistics (lag), errors by kind, rebalances and commits.

use super::settings::librdkafka_name;
use super::KafkaSettings;
use crate::telemetry::{KafkaErrorKind, KafkaMetrics};
use anyhow::Context;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use std::sync::{mpsc, Arc, Mutex};

/// chiprisk's defaults for its consumer; `kafka.properties` overrides them.
/// - `fetch.wait.max.ms`: brokers that hold every fetch for the full wait
///   (Tansu 0.6.0 does, even with data to return) add it to every event's
///   latency, twice (route, then score): 10 ms, not librdkafka's 500. Idle,
///   that is about 100 small fetches a second.
/// - `queued.min.messages`, `fetch.queue.backoff.ms`: every partition's
///   fetches feed one queue, and librdkafka stops fetching a partition for
///   `fetch.queue.backoff.ms` (default 1000) whenever that queue holds
///   `queued.min.messages` (default 100,000). A loop that reads its own
///   routed copies back hits that threshold under load and then idles for
///   up to a second at a time: it halved throughput (BENCHMARKS.md §4).
///   20,000 messages (about 7 MB of events, 10 turns of the loop) with a
///   10 ms backoff keep the loop fed and the queue's memory bounded.
pub const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("fetch.wait.max.ms", "10"),
    ("queued.min.messages", "20000"),
    ("fetch.queue.backoff.ms", "10"),
    ("statistics.interval.ms", "5000"),
];

/// chiprisk's defaults for its producer; `kafka.properties` overrides them.
/// - `linger.ms`: routed copies leave within a millisecond.
/// - `compression.type`: bundles of JSON events compress well (lz4: a 56 KB
///   bundle of synthetic events to 22%); the repartition topic keeps
///   everything, so this is its size on disk too. With it, the broker spent
///   1.1–1.5 µs of CPU per event instead of 1.7–1.9 (BENCHMARKS.md §4).
pub const PRODUCER_DEFAULTS: &[(&str, &str)] = &[("linger.ms", "1"), ("compression.type", "lz4")];

/// Assignment changes, sent from the rebalance callback to the loop.
#[derive(Debug)]
pub(super) enum Rebalanced {
    Assigned(Vec<(String, i32)>),
    Revoked(Vec<(String, i32)>),
}

/// Callbacks from librdkafka: statistics (lag), errors, rebalances, commits.
pub(super) struct Callbacks {
    pub(super) metrics: Arc<crate::telemetry::Metrics>,
    pub(super) repartition_topic: String,
    pub(super) rebalances: Mutex<mpsc::Sender<Rebalanced>>,
}

impl ClientContext for Callbacks {
    fn stats(&self, stats: Statistics) {
        for (topic, t) in &stats.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 {
                    self.metrics.kafka().set_lag(topic, *partition, p.consumer_lag);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        client_error(self.metrics.kafka(), "consumer", &error, reason);
    }
}

impl ConsumerContext for Callbacks {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let partitions: Vec<(String, i32)> =
            tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                // Repartition partitions are rebuilt from their beginning.
                for (topic, partition) in &partitions {
                    if *topic == self.repartition_topic {
                        let _ = tpl.set_partition_offset(topic, *partition, Offset::Beginning);
                    }
                }
                self.metrics.kafka().rebalanced(true);
                tracing::info!(partitions = ?partitions, "partitions assigned");
                let _ = self.rebalances.lock().expect("lock").send(Rebalanced::Assigned(partitions));
                if let Err(e) = consumer.assign(tpl) {
                    self.metrics.kafka().error(KafkaErrorKind::Consume);
                    tracing::error!("cannot take the assigned partitions: {e}");
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.metrics.kafka().rebalanced(false);
                // Offsets of finished batches are stored: commit them before
                // another member takes over.
                if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                    if !matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::NoOffset)) {
                        tracing::warn!("commit on revocation failed: {e}");
                    }
                }
                tracing::info!(partitions = ?partitions, "partitions revoked");
                let _ = self.rebalances.lock().expect("lock").send(Rebalanced::Revoked(partitions));
                let _ = consumer.unassign();
            }
            other => {
                self.metrics.kafka().error(KafkaErrorKind::Consume);
                tracing::error!("rebalance failed: {other:?}");
                let _ = consumer.unassign();
            }
        }
    }

    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, _offsets: &TopicPartitionList) {
        match result {
            Ok(()) => self.metrics.kafka().committed(),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => {
                self.metrics.kafka().error(KafkaErrorKind::Consume);
                tracing::warn!("offset commit failed: {e}");
            }
        }
    }
}

/// A client-level error librdkafka reported (the consumer's or the
/// producer's): counted by kind and logged.
pub(super) fn client_error(metrics: &KafkaMetrics, client: &str, error: &KafkaError, reason: &str) {
    let kind = classify(error);
    metrics.error(kind);
    tracing::warn!(kind = kind.as_str(), client, "kafka: {error}: {reason}");
}

pub(super) fn classify(e: &KafkaError) -> KafkaErrorKind {
    use RDKafkaErrorCode::*;
    match e.rdkafka_error_code() {
        Some(
            BrokerTransportFailure | AllBrokersDown | Resolve | NetworkException | RequestTimedOut | OperationTimedOut,
        ) => KafkaErrorKind::Transport,
        Some(Authentication | SaslAuthenticationFailed | TopicAuthorizationFailed | GroupAuthorizationFailed) => {
            KafkaErrorKind::Auth
        }
        _ => match e {
            KafkaError::MessageProduction(_) => KafkaErrorKind::Produce,
            KafkaError::AdminOp(_) | KafkaError::AdminOpCreation(_) | KafkaError::MetadataFetch(_) => {
                KafkaErrorKind::Admin
            }
            KafkaError::MessageConsumption(_) | KafkaError::ConsumerCommit(_) | KafkaError::Rebalance(_) => {
                KafkaErrorKind::Consume
            }
            _ => KafkaErrorKind::Other,
        },
    }
}

/// The librdkafka configuration shared by the consumer, producer and admin
/// client: chiprisk's defaults for this client, then `kafka.properties` and
/// `kafka.properties_from_files`, which win.
pub fn client_config(settings: &KafkaSettings) -> anyhow::Result<ClientConfig> {
    client_config_with(settings, &[])
}

pub(super) fn client_config_with(settings: &KafkaSettings, defaults: &[(&str, &str)]) -> anyhow::Result<ClientConfig> {
    let brokers = settings.brokers.as_deref().context("kafka.brokers is not set")?;
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", brokers).set("client.id", "chiprisk");
    for (k, v) in defaults {
        cfg.set(*k, *v);
    }
    for (k, v) in &settings.properties {
        cfg.set(librdkafka_name(k), v);
    }
    for (k, path) in &settings.properties_from_files {
        let value = std::fs::read_to_string(path)
            .with_context(|| format!("Failed to read kafka.properties_from_files.{k} from {}", path.display()))?;
        cfg.set(librdkafka_name(k), value.trim_end_matches(['\n', '\r']));
    }
    Ok(cfg)
}
