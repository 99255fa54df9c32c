//! Which of the loop's batches the broker has acknowledged in full.
//!
//! Every record the loop produces carries its batch's sequence number and
//! its kind as librdkafka's opaque value: an integer, so nothing is
//! allocated per record (a future per record cost about a tenth of the
//! process's CPU under load: BENCHMARKS.md §4). librdkafka's delivery
//! callback, on the producer's polling thread, counts the acknowledgements
//! per batch here; the loop stores a batch's offsets once its count is zero.

use super::client::client_error;
use crate::telemetry::{KafkaErrorKind, Metrics, ProducedKind};
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::ClientContext;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// A batch's sequence number, counted from 0 by the loop.
pub type BatchSeq = u64;

/// Acknowledgements still owed, per batch.
pub struct Deliveries {
    counts: Mutex<Counts>,
    changed: Notify,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct Counts {
    /// Records of each batch not yet acknowledged; a batch with none owed
    /// is absent.
    owed: HashMap<BatchSeq, usize>,
    /// The first failed delivery.
    failure: Option<String>,
}

/// A record was not delivered: its batch's offsets must not be stored.
#[derive(Debug, thiserror::Error)]
#[error("{0}; stopping before storing offsets")]
pub struct DeliveryFailed(String);

impl Deliveries {
    pub fn new(metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self { counts: Mutex::default(), changed: Notify::new(), metrics })
    }

    /// Batch `seq` is about to produce `records` records. Called before the
    /// first of them is handed to librdkafka, so that no acknowledgement
    /// arrives before its batch is known.
    pub fn expect(&self, seq: BatchSeq, records: usize) {
        if records > 0 {
            *self.lock().owed.entry(seq).or_default() += records;
        }
    }

    /// Whether every record of batch `seq` is acknowledged.
    pub fn finished(&self, seq: BatchSeq) -> Result<bool, DeliveryFailed> {
        let counts = self.lock();
        if let Some(failure) = &counts.failure {
            return Err(DeliveryFailed(failure.clone()));
        }
        Ok(!counts.owed.contains_key(&seq))
    }

    /// Waits until a batch is finished or a delivery failed since the last
    /// wait (returns at once if one did meanwhile).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    fn settle(&self, seq: BatchSeq, result: Result<(), String>) {
        let mut counts = self.lock();
        let wake = match result {
            Ok(()) => match counts.owed.get_mut(&seq) {
                Some(owed) if *owed > 1 => {
                    *owed -= 1;
                    false
                }
                Some(_) => {
                    counts.owed.remove(&seq);
                    true
                }
                None => false,
            },
            Err(message) => {
                counts.failure.get_or_insert(message);
                true
            }
        };
        drop(counts);
        if wake {
            self.changed.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // The counts stay consistent even if a holder panicked: each
        // update is a single step.
        self.counts.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The opaque value of a record: its batch and its kind.
pub fn opaque(seq: BatchSeq, kind: ProducedKind) -> usize {
    (seq as usize) << 2 | kind as usize
}

fn from_opaque(opaque: usize) -> (BatchSeq, ProducedKind) {
    ((opaque >> 2) as BatchSeq, ProducedKind::ALL[opaque & 3])
}

/// The producer's librdkafka context: delivery reports go to [`Deliveries`],
/// client errors to the metrics and the log.
pub struct DeliveryContext(pub Arc<Deliveries>);

impl ClientContext for DeliveryContext {
    fn error(&self, error: KafkaError, reason: &str) {
        client_error(self.0.metrics.kafka(), "producer", &error, reason);
    }
}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let (seq, kind) = from_opaque(opaque);
        let deliveries = &self.0;
        match result {
            Ok(_) => {
                deliveries.metrics.kafka().produced(kind);
                deliveries.settle(seq, Ok(()));
            }
            Err((e, _)) => {
                deliveries.metrics.kafka().error(KafkaErrorKind::Produce);
                deliveries.settle(seq, Err(format!("a {} record was not delivered: {e}", kind.as_str())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_values_round_trip() {
        for seq in [0, 1, 7, 1 << 40] {
            for kind in ProducedKind::ALL {
                assert_eq!(from_opaque(opaque(seq, kind)), (seq, kind));
            }
        }
    }

    #[test]
    fn a_batch_is_finished_once_each_of_its_records_is_acknowledged() {
        let d = Deliveries::new(Arc::new(Metrics::new()));
        assert!(d.finished(0).unwrap(), "a batch that produced nothing");
        d.expect(1, 2);
        d.expect(2, 1);
        d.settle(1, Ok(()));
        assert!(!d.finished(1).unwrap());
        d.settle(2, Ok(()));
        assert!(d.finished(2).unwrap(), "batches finish in any order");
        d.settle(1, Ok(()));
        assert!(d.finished(1).unwrap());
    }

    #[test]
    fn a_failed_delivery_fails_every_later_check() {
        let d = Deliveries::new(Arc::new(Metrics::new()));
        d.expect(0, 2);
        d.settle(0, Err("a route record was not delivered: timed out".into()));
        d.settle(0, Ok(()));
        let e = d.finished(0).unwrap_err().to_string();
        assert!(e.contains("timed out") && e.contains("before storing offsets"), "{e}");
        assert!(d.finished(7).is_err());
    }

    #[tokio::test]
    async fn a_waiter_wakes_when_a_batch_finishes_even_if_it_finished_before_the_wait() {
        let d = Deliveries::new(Arc::new(Metrics::new()));
        d.expect(0, 1);
        d.settle(0, Ok(()));
        tokio::time::timeout(std::time::Duration::from_secs(5), d.changed()).await.expect("woken");
    }
}
