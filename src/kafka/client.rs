//! The librdkafka clients' configuration and callbacks: chiprisk's
//! defaults, and client errors and commits counted by kind.

use super::positions::LogReport;
use super::stats::Stats;
use crate::config::{librdkafka_name, KafkaSettings};
use crate::telemetry::KafkaErrorKind;
use anyhow::Context;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::ClientContext;
use std::sync::{Arc, Mutex};

/// chiprisk's defaults for its consumer; `kafka.properties` overrides them.
/// - `fetch.wait.max.ms`: brokers that hold every fetch for the full wait
///   (Tansu 0.6.0 does, even with data to return) add it to every event's
///   latency: 10 ms, not librdkafka's 500. Idle, that is about 100 small
///   fetches a second.
/// - `queued.min.messages`, `fetch.queue.backoff.ms`: librdkafka stops
///   fetching for `fetch.queue.backoff.ms` (default 1000) whenever its queue
///   holds `queued.min.messages` (default 100,000). 20,000 messages (about
///   7 MB of events, 10 turns of the loop) with a 10 ms backoff keep the
///   loop fed while it rebuilds and the queue's memory bounded.
pub const CONSUMER_DEFAULTS: &[(&str, &str)] =
    &[("fetch.wait.max.ms", "10"), ("queued.min.messages", "20000"), ("fetch.queue.backoff.ms", "10")];

/// Statistics every 100 ms (fixed: readiness rests on them). They carry
/// each partition's log as the broker last reported it in a fetch response,
/// which tells the loop when its rebuild has caught up; librdkafka's
/// ListOffsets answer is wrong on some brokers (Tansu 0.6.0's is the last
/// batch's base offset + 1). A few partitions' worth of JSON each time.
pub const STATISTICS_INTERVAL_MS: &str = "100";

/// `ssl.ca.location=probe`, unless `kafka.properties` names a CA: OpenSSL
/// is linked in statically, and its compiled-in certificate directory
/// (`/usr/local/ssl`) is not where any distribution keeps its CA bundle.
/// librdkafka then looks in the usual places (Debian's and distroless'
/// `/etc/ssl/certs/ca-certificates.crt` among them), so brokers with public
/// certificates (Confluent Cloud, MSK, Aiven) verify with no setting.
/// Harmless without TLS.
pub const CA_DEFAULT: (&str, &str) = ("ssl.ca.location", "probe");

/// chiprisk's defaults for its producer; `kafka.properties` overrides them.
/// `linger.ms`: dead letters and score updates leave within a millisecond.
pub const PRODUCER_DEFAULTS: &[(&str, &str)] = &[("linger.ms", "1")];

/// The consumer of the event topics.
pub(super) type EventConsumer = rdkafka::consumer::StreamConsumer<Callbacks>;

/// Callbacks from librdkafka, for the consumer and the producer: client
/// errors and commits, counted and logged, and the ends of the logs.
pub(super) struct Callbacks {
    metrics: Arc<crate::telemetry::Metrics>,
    /// "consumer" or "producer", for the log.
    client: &'static str,
    /// Each partition's log as the broker last reported it (statistics).
    ends: Mutex<Vec<(String, i32, LogReport)>>,
}

impl Callbacks {
    pub(super) fn new(metrics: Arc<crate::telemetry::Metrics>, client: &'static str) -> Self {
        Self { metrics, client, ends: Mutex::default() }
    }

    /// The latest report of every partition's log.
    pub(super) fn ends(&self) -> Vec<(String, i32, LogReport)> {
        self.ends.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl ClientContext for Callbacks {
    fn stats_raw(&self, statistics: &[u8]) {
        let Ok(stats) = serde_json::from_slice::<Stats>(statistics) else { return };
        if let Some(at) = stats.fetched_at(crate::event::Timestamp::now().as_unix_seconds()) {
            self.metrics.kafka().fetched_at(at);
        }
        *self.ends.lock().unwrap_or_else(|p| p.into_inner()) = stats.ends();
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let kind = if refused_credentials(reason) { KafkaErrorKind::Auth } else { classify(&error) };
        self.metrics.kafka().error(kind);
        tracing::warn!(kind = kind.as_str(), client = self.client, "kafka: {error}: {reason}");
    }
}

impl ConsumerContext for Callbacks {
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

/// Whether librdkafka's text says a TLS peer refused chiprisk's
/// credentials or chiprisk refused the broker's. Under TLS 1.3 a broker
/// that wants a client certificate says so only after the handshake, as a
/// transport failure ("tlsv13 alert certificate required"); it is an
/// authentication problem all the same, and is counted as one.
fn refused_credentials(reason: &str) -> bool {
    ["certificate", "SSL handshake failed", "SSL alert", "SASL authentication"].iter().any(|m| reason.contains(m))
}

pub(super) fn classify(e: &KafkaError) -> KafkaErrorKind {
    use RDKafkaErrorCode::*;
    match e.rdkafka_error_code() {
        Some(
            BrokerTransportFailure | AllBrokersDown | Resolve | NetworkException | RequestTimedOut | OperationTimedOut,
        ) => KafkaErrorKind::Transport,
        // A failed TLS handshake (`Ssl`) is a credential problem: an
        // untrusted or expired certificate, a missing client certificate.
        Some(Authentication | SaslAuthenticationFailed | TopicAuthorizationFailed | GroupAuthorizationFailed | SSL) => {
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
    if !settings.sets_ca() {
        cfg.set(CA_DEFAULT.0, CA_DEFAULT.1);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KafkaSettings;
    use std::io::Write;

    /// What managed clusters ask for, accepted by this build of librdkafka
    /// (a build without OpenSSL or zstd refuses each of these with "not
    /// available at build time").
    #[test]
    fn the_build_accepts_tls_scram_oauthbearer_and_zstd() {
        let cases: &[&[(&str, &str)]] = &[
            &[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "SCRAM-SHA-512")],
            &[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "SCRAM-SHA-256")],
            &[("security.protocol", "SASL_SSL"), ("sasl.mechanism", "OAUTHBEARER")],
            &[("security.protocol", "SSL"), ("compression.type", "zstd")],
        ];
        for props in cases {
            let mut s = KafkaSettings { brokers: Some("127.0.0.1:9".into()), ..KafkaSettings::default() };
            for (k, v) in *props {
                s.properties.insert((*k).into(), (*v).into());
            }
            s.properties.insert("sasl.username".into(), "u".into());
            s.properties.insert("sasl.password".into(), "p".into());
            let created = client_config(&s).unwrap().create::<rdkafka::producer::BaseProducer>();
            assert!(created.is_ok(), "{props:?}: {:?}", created.err());
        }
    }

    #[test]
    fn tls_failures_count_as_auth_whatever_code_librdkafka_gives_them() {
        let refused = [
            "ssl://b:9093/bootstrap: Receive failed: error:0A00045C:SSL routines::tlsv13 alert certificate required: \
             SSL alert number 116 (after 0ms in state APIVERSION_QUERY)",
            "ssl://b:9093/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed",
        ];
        for reason in refused {
            assert!(refused_credentials(reason), "{reason}");
        }
        let transport =
            ["ssl://b:9093/1: Disconnected: SSL connection closed by peer", "Connect to ipv4#10.0.0.1:9093 failed"];
        for reason in transport {
            assert!(!refused_credentials(reason), "{reason}");
        }
    }

    #[test]
    fn the_ca_is_probed_unless_one_is_configured() {
        let mut s = KafkaSettings { brokers: Some("127.0.0.1:9".into()), ..KafkaSettings::default() };
        assert_eq!(client_config(&s).unwrap().get("ssl.ca.location"), Some("probe"));
        s.properties.insert("ssl_ca_location".into(), "/etc/kafka/ca.pem".into());
        assert_eq!(client_config(&s).unwrap().get("ssl.ca.location"), Some("/etc/kafka/ca.pem"));
        s.properties.clear();
        s.properties_from_files.insert("ssl.ca.pem".into(), "/no/such/file".into());
        assert!(s.sets_ca(), "a CA given as PEM from a file counts too");
    }

    #[test]
    fn secrets_come_from_files_and_never_print() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "s3cret").unwrap();
        let mut s = KafkaSettings { brokers: Some("127.0.0.1:9092".into()), ..KafkaSettings::default() };
        s.properties.insert("security_protocol".into(), "SASL_SSL".into());
        s.properties.insert("sasl_password".into(), "from-env".into());
        s.properties_from_files.insert("sasl.username".into(), file.path().to_owned());
        let cfg = client_config(&s).unwrap();
        assert_eq!(cfg.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(cfg.get("sasl.username"), Some("s3cret"), "read from the file, newline trimmed");
        let printed = format!("{:?}", s.redacted());
        assert!(!printed.contains("from-env") && printed.contains("<redacted>"), "{printed}");
        s.properties_from_files.insert("sasl.password".into(), "/no/such/secret".into());
        let e = client_config(&s).unwrap_err();
        assert!(format!("{e:#}").contains("kafka.properties_from_files.sasl.password"), "{e:#}");
    }
}
