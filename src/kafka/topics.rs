//! What chiprisk needs of its topics before it reads: they exist (created
//! if allowed), the event topics keep every event, and their partitions.
//!
//! The event topics are the log every replica rebuilds its scores from at
//! start. A topic whose broker deletes old events would make a restarted
//! replica forget them without a word, so chiprisk refuses to start on one
//! ([`HistoryLoss`]) unless `kafka.accept_history_loss` is set.

use super::client::{client_config, EventConsumer};
use crate::config::KafkaSettings;
use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::error::RDKafkaErrorCode;
use std::sync::Arc;
use std::time::Duration;

/// An event topic from which the broker may delete events. Starting on it
/// would lose history in silence, so chiprisk stops with this error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "event topic {topic} lets the broker delete events ({setting}): chiprisk rebuilds its scores from the event \
     topics at every start, so deleted events would vanish from the scores. Make the topic keep everything \
     (retention.ms=-1 and retention.bytes=-1, or cleanup.policy=compact with events keyed by id), or set \
     kafka.accept_history_loss=true to accept the loss"
)]
pub struct HistoryLoss {
    pub topic: String,
    /// The setting that deletes, as the broker reports it.
    pub setting: String,
}

/// Decides from a topic's configuration (as DescribeConfigs reports it;
/// `None` where the broker reports nothing) whether the broker may delete
/// its events. Kafka's defaults apply to what is missing: `cleanup.policy`
/// delete, `retention.ms` 7 days, `retention.bytes` unlimited.
pub fn check_retention(
    topic: &str,
    cleanup_policy: Option<&str>,
    retention_ms: Option<&str>,
    retention_bytes: Option<&str>,
) -> Result<(), HistoryLoss> {
    let policy = cleanup_policy.unwrap_or("delete");
    if !policy.split(',').any(|p| p.trim() == "delete") {
        return Ok(());
    }
    let loss = |setting: String| Err(HistoryLoss { topic: topic.to_owned(), setting });
    match retention_ms.map(str::trim) {
        None => return loss("retention.ms not set: the broker's default applies, 7 days on Kafka".into()),
        Some("-1") => {}
        Some(ms) => return loss(format!("retention.ms={ms}, cleanup.policy={policy}")),
    }
    match retention_bytes.map(str::trim) {
        None | Some("-1") => Ok(()),
        Some(bytes) => loss(format!("retention.bytes={bytes}, cleanup.policy={policy}")),
    }
}

/// Creates the missing topics (if `kafka.create_topics`), checks the event
/// topics' retention (unless `kafka.accept_history_loss`), and lists every
/// partition of the event topics.
pub(super) async fn prepare(s: &KafkaSettings, consumer: &Arc<EventConsumer>) -> anyhow::Result<Vec<(String, i32)>> {
    let admin: AdminClient<DefaultClientContext> =
        client_config(s)?.create().context("Failed to create the admin client")?;
    let result = async {
        let ten_seconds = Some(Duration::from_secs(10));
        let opts = AdminOptions::new().operation_timeout(ten_seconds).request_timeout(ten_seconds);
        if s.create_topics {
            create(s, &admin, &opts).await?;
        }
        let partitions = list_partitions(consumer.clone(), s).await?;
        if !s.accept_history_loss {
            check_configs(s, &admin, &opts).await?;
        }
        Ok(partitions)
    }
    .await;
    // Closing the admin client waits for its thread (up to 100 ms): in the
    // background, off the tokio workers.
    tokio::task::spawn_blocking(move || drop(admin));
    result
}

/// Every partition of the event topics, once every topic chiprisk reads or
/// writes exists; an error names the topic and its key.
async fn list_partitions(consumer: Arc<EventConsumer>, s: &KafkaSettings) -> anyhow::Result<Vec<(String, i32)>> {
    let mut wanted: Vec<(String, &str)> = s.topics.iter().map(|t| (t.clone(), "kafka.topics")).collect();
    wanted.extend([
        (s.output_topic.clone(), "kafka.output_topic"),
        (s.dead_letter_topic.clone(), "kafka.dead_letter_topic"),
    ]);
    wanted.retain(|(t, _)| !t.is_empty());
    // Metadata requests block: not on a tokio worker.
    tokio::task::spawn_blocking(move || {
        let mut partitions = Vec::new();
        for (topic, key) in &wanted {
            let metadata = consumer
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .with_context(|| format!("Failed to fetch the metadata of topic {topic} ({key})"))?;
            let t = metadata.topics().first().with_context(|| format!("no metadata for topic {topic} ({key})"))?;
            match t.error().map(RDKafkaErrorCode::from) {
                None if !t.partitions().is_empty() => {}
                None | Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
                    anyhow::bail!("topic {topic} ({key}) is missing (create it, or set kafka.create_topics = true)")
                }
                Some(e) => anyhow::bail!("topic {topic} ({key}): {e}"),
            }
            if *key == "kafka.topics" {
                let replicas = t.partitions().iter().map(|p| p.replicas().len()).min().unwrap_or(0);
                if let Some(warning) = thin_replication(topic, replicas) {
                    tracing::warn!(topic = topic.as_str(), replicas, "{warning}");
                }
                partitions.extend(t.partitions().iter().map(|p| (topic.clone(), p.id())));
            }
        }
        Ok(partitions)
    })
    .await?
}

/// A warning when an event topic's least-replicated partition has fewer
/// than 2 replicas: the event topics are the only copy of the history every
/// replica rebuilds its scores from, and one broker's disk would hold it.
pub fn thin_replication(topic: &str, replicas: usize) -> Option<String> {
    (replicas < 2).then(|| {
        format!(
            "event topic {topic} has a partition with {replicas} replica(s): losing one broker's disk would lose \
             events that every replica rebuilds its scores from; raise its replication factor to 3 \
             (kafka-reassign-partitions) where the cluster allows"
        )
    })
}

/// Refuses event topics from which the broker may delete events.
async fn check_configs(
    s: &KafkaSettings,
    admin: &AdminClient<DefaultClientContext>,
    opts: &AdminOptions,
) -> anyhow::Result<()> {
    let specifiers: Vec<ResourceSpecifier> = s.topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    let described = admin.describe_configs(&specifiers, opts).await.context("Failed to describe the event topics")?;
    for (topic, result) in s.topics.iter().zip(described) {
        let config = result.map_err(|e| {
            anyhow::anyhow!(
                "cannot read the configuration of topic {topic} (DescribeConfigs: {e}); grant chiprisk \
                 DescribeConfigs on it, or set kafka.accept_history_loss=true"
            )
        })?;
        let value = |name: &str| config.get(name).and_then(|e| e.value.as_deref());
        check_retention(topic, value("cleanup.policy"), value("retention.ms"), value("retention.bytes"))?;
    }
    Ok(())
}

/// Creates chiprisk's topics that are missing: the event topics keep
/// everything; the score topic is compacted (the latest update per vendor
/// is what matters); the dead-letter topic takes the broker's defaults.
async fn create(
    s: &KafkaSettings,
    admin: &AdminClient<DefaultClientContext>,
    opts: &AdminOptions,
) -> anyhow::Result<()> {
    // Fixed(-1): the broker's default.replication.factor.
    let new = |name| NewTopic::new(name, s.partitions, TopicReplication::Fixed(s.replication_factor));
    let mut topics: Vec<NewTopic> =
        s.topics.iter().map(|t| new(t).set("retention.ms", "-1").set("retention.bytes", "-1")).collect();
    if !s.output_topic.is_empty() {
        topics.push(new(&s.output_topic).set("cleanup.policy", "compact"));
    }
    if !s.dead_letter_topic.is_empty() {
        topics.push(new(&s.dead_letter_topic));
    }
    for result in admin.create_topics(topics.iter(), opts).await.context("Failed to create topics")? {
        match result {
            Ok(t) => tracing::info!(topic = t, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => anyhow::bail!("cannot create topic {t}: {e}"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check_retention, thin_replication};

    #[test]
    fn an_event_topic_with_one_replica_is_warned_about_and_three_are_not() {
        let warning = thin_replication("chiprisk.events", 1).expect("one replica warns");
        assert!(warning.contains("chiprisk.events") && warning.contains("1 replica"), "{warning}");
        assert!(thin_replication("chiprisk.events", 0).is_some());
        assert_eq!(thin_replication("chiprisk.events", 2), None);
        assert_eq!(thin_replication("chiprisk.events", 3), None);
    }

    #[test]
    fn a_topic_that_keeps_everything_passes() {
        assert_eq!(check_retention("e", Some("delete"), Some("-1"), Some("-1")), Ok(()));
        assert_eq!(check_retention("e", None, Some("-1"), None), Ok(()), "retention.bytes defaults to unlimited");
        assert_eq!(check_retention("e", Some("compact"), Some("604800000"), None), Ok(()), "compaction alone");
    }

    #[test]
    fn a_topic_that_deletes_events_is_refused_naming_the_topic_and_setting() {
        let cases = [
            (Some("delete"), Some("604800000"), Some("-1"), "retention.ms=604800000"),
            (Some("compact,delete"), Some("86400000"), None, "retention.ms=86400000"),
            (Some("delete"), Some("-1"), Some("1073741824"), "retention.bytes=1073741824"),
            (None, None, None, "retention.ms not set"),
        ];
        for (policy, ms, bytes, named) in cases {
            let e = check_retention("chiprisk.events", policy, ms, bytes).unwrap_err();
            let text = e.to_string();
            assert!(text.contains("chiprisk.events") && text.contains(named), "{text}");
            assert!(text.contains("kafka.accept_history_loss"), "{text}");
        }
    }
}
