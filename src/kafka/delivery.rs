//! Hands the step's outputs to the producer and waits until the broker has
//! acknowledged every one (`acks=all`): the loop stores offsets only after.

use super::backpressure;
use super::client::Callbacks;
use super::processor::{dead_letter_payload, Output};
use crate::config::KafkaSettings;
use crate::telemetry::{KafkaErrorKind, Metrics, ProducedKind};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

pub(super) type Producer = FutureProducer<Callbacks>;

/// The longest rejection message a dead letter carries in its
/// `chiprisk-error` header, in bytes; a longer one (a 60 KB bad timestamp
/// quoted back) is cut at a character boundary and ends in "…".
pub const MAX_ERROR_BYTES: usize = 1024;

/// A record's framing beyond its key, header names and values and payload:
/// Kafka's record batch header (61 bytes) and the varints of the record and
/// of each header, with room to spare.
const RECORD_OVERHEAD: usize = 512;

/// A dead letter as produced: its key, headers and payload, sized so that
/// the whole record fits in `largest_record` bytes whatever the message
/// and the rejected bytes: the error text is cut to [`MAX_ERROR_BYTES`],
/// and the payload to what remains after the key and headers (header
/// `chiprisk-original-bytes` then gives the original length).
pub(super) struct DeadLetter<'a> {
    pub key: String,
    pub headers: Vec<(&'static str, String)>,
    pub payload: &'a [u8],
}

impl<'a> DeadLetter<'a> {
    pub(super) fn new(
        payload: &'a [u8],
        reason: &str,
        message: &str,
        source: (&str, i32, i64),
        largest_record: usize,
    ) -> Self {
        let (topic, partition, offset) = source;
        let key = format!("{topic}/{partition}/{offset}");
        let mut headers = vec![
            ("chiprisk-reason", reason.to_owned()),
            ("chiprisk-error", shorten(message, MAX_ERROR_BYTES)),
            ("chiprisk-source-topic", topic.to_owned()),
            ("chiprisk-source-partition", partition.to_string()),
            ("chiprisk-source-offset", offset.to_string()),
        ];
        // Room for the original-length header is kept whether or not it is
        // needed, so that adding it never overflows the record.
        let original = ("chiprisk-original-bytes", payload.len().to_string());
        let fixed: usize = headers.iter().chain([&original]).map(|(k, v)| k.len() + v.len()).sum::<usize>()
            + key.len()
            + RECORD_OVERHEAD;
        let (payload, cut) = dead_letter_payload(payload, largest_record.saturating_sub(fixed));
        if cut.is_some() {
            headers.push(original);
        }
        Self { key, headers, payload }
    }

    /// The record's size as counted against `message.max.bytes`, framing
    /// aside.
    #[cfg(test)]
    fn size(&self) -> usize {
        self.key.len() + self.payload.len() + self.headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
    }
}

/// `text` cut to at most `max` bytes at a character boundary, "…" marking
/// a cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

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
                let source = (*topic, *partition, *offset);
                let letter = DeadLetter::new(payload, reason.as_str(), message, source, s.largest_record());
                let headers = letter
                    .headers
                    .iter()
                    .fold(OwnedHeaders::new(), |h, (key, value)| h.insert(Header { key, value: Some(value) }));
                let record = FutureRecord::to(&s.dead_letter_topic)
                    .key(letter.key.as_str())
                    .payload(letter.payload)
                    .headers(headers);
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
/// deliveries to make room ([`backpressure`]). Any other refusal is counted
/// and is an error.
// The record handed back with a refusal is rdkafka's shape, as large as it is.
#[allow(clippy::result_large_err)]
async fn enqueue(
    producer: &Producer,
    metrics: &Metrics,
    record: FutureRecord<'_, str, [u8]>,
) -> anyhow::Result<DeliveryFuture> {
    backpressure::offer_async(record, |r| producer.send_result(r)).await.map_err(|e| {
        metrics.kafka().error(KafkaErrorKind::Produce);
        anyhow::anyhow!("cannot queue a record for delivery: {e}")
    })
}

#[cfg(test)]
mod tests {
    use super::{shorten, DeadLetter, MAX_ERROR_BYTES, RECORD_OVERHEAD};

    #[test]
    fn a_dead_letter_fits_the_smallest_record_whatever_the_message_and_payload() {
        let smallest = 64 * 1024;
        let message = format!("occurred_at: not a time: {}", "9".repeat(60_000));
        for payload_len in [0, 100, 63 * 1024, 64 * 1024, 1_000_000] {
            let payload = vec![b'x'; payload_len];
            let letter = DeadLetter::new(&payload, "bad_time", &message, ("chiprisk.events", 7, 123_456_789), smallest);
            assert!(letter.size() + RECORD_OVERHEAD <= smallest, "{payload_len}: {}", letter.size());
            let error = &letter.headers.iter().find(|(k, _)| *k == "chiprisk-error").unwrap().1;
            assert!(error.len() <= MAX_ERROR_BYTES && error.ends_with('…'), "{}", error.len());
            let original = letter.headers.iter().find(|(k, _)| *k == "chiprisk-original-bytes");
            match original {
                Some((_, len)) => {
                    assert_eq!((len.as_str(), letter.payload.len() < payload_len), (&*payload_len.to_string(), true))
                }
                None => assert_eq!(letter.payload.len(), payload_len, "kept whole when it fits"),
            }
        }
    }

    #[test]
    fn shortening_cuts_at_a_character_boundary() {
        assert_eq!(shorten("short", 10), "short");
        let cut = shorten(&"é".repeat(100), 11);
        assert!(cut.len() <= 11 && cut.ends_with('…'), "{cut}");
        assert!(cut.trim_end_matches('…').chars().all(|c| c == 'é'));
    }
}
