//! Hands the step's outputs to the producer and waits until the broker has
//! acknowledged every one (`acks=all`): the loop stores offsets only after.

use super::client::Callbacks;
use super::processor::{dead_letter_payload, Output};
use crate::config::KafkaSettings;
use crate::telemetry::{KafkaErrorKind, Metrics, ProducedKind};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use std::time::Duration;

pub(super) type Producer = FutureProducer<Callbacks>;

/// Room left in a dead letter's record for its key, headers and framing.
const DEAD_LETTER_FRAMING: usize = 16 * 1024;

/// Produces every output and waits for each acknowledgement. A record the
/// broker refuses is an error: the caller must not store the offsets.
/// Outputs whose topic is turned off (`""`) are only counted.
pub(super) async fn deliver(
    producer: &Producer,
    s: &KafkaSettings,
    metrics: &Metrics,
    outputs: Vec<Output<'_>>,
) -> anyhow::Result<()> {
    let mut pending: Vec<(ProducedKind, DeliveryFuture)> = Vec::with_capacity(outputs.len());
    for output in &outputs {
        match output {
            Output::DeadLetter { payload, reason, message, topic, partition, offset } => {
                metrics.kafka().dead_lettered(*reason);
                if s.dead_letter_topic.is_empty() {
                    continue;
                }
                let room = s.largest_record().saturating_sub(DEAD_LETTER_FRAMING);
                let (payload, cut) = dead_letter_payload(payload, room);
                let (partition_text, offset_text) = (partition.to_string(), offset.to_string());
                let mut headers = OwnedHeaders::new()
                    .insert(Header { key: "chiprisk-reason", value: Some(reason.as_str()) })
                    .insert(Header { key: "chiprisk-error", value: Some(message.as_str()) })
                    .insert(Header { key: "chiprisk-source-topic", value: Some(*topic) })
                    .insert(Header { key: "chiprisk-source-partition", value: Some(&partition_text) })
                    .insert(Header { key: "chiprisk-source-offset", value: Some(&offset_text) });
                if let Some(len) = cut {
                    headers = headers.insert(Header { key: "chiprisk-original-bytes", value: Some(&len.to_string()) });
                }
                let key = format!("{topic}/{partition}/{offset}");
                let record = FutureRecord::to(&s.dead_letter_topic).key(key.as_str()).payload(payload).headers(headers);
                pending.push((ProducedKind::DeadLetter, enqueue(producer, metrics, record).await?));
            }
            Output::ScoreUpdate { key, payload } => {
                if s.output_topic.is_empty() {
                    continue;
                }
                let record = FutureRecord::to(&s.output_topic).key(key.as_str()).payload(&payload[..]);
                pending.push((ProducedKind::ScoreUpdate, enqueue(producer, metrics, record).await?));
            }
        }
    }
    for (kind, delivery) in pending {
        match delivery.await {
            Ok(Ok(_)) => metrics.kafka().produced(kind),
            Ok(Err((e, _))) => {
                metrics.kafka().error(KafkaErrorKind::Produce);
                anyhow::bail!("a {} record was not delivered: {e}; stopping before storing offsets", kind.as_str());
            }
            Err(_) => anyhow::bail!("the producer stopped before a {} record was delivered", kind.as_str()),
        }
    }
    Ok(())
}

/// Hands a record to librdkafka; while its queue is full, waits for
/// deliveries to make room. Any other refusal is counted and is an error.
async fn enqueue(
    producer: &Producer,
    metrics: &Metrics,
    mut record: FutureRecord<'_, str, [u8]>,
) -> anyhow::Result<DeliveryFuture> {
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((e, _)) => {
                metrics.kafka().error(KafkaErrorKind::Produce);
                anyhow::bail!("cannot queue a record for delivery: {e}");
            }
        }
    }
}
