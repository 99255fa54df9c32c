//! The per-message step of the Kafka pipeline, without I/O: a consumed
//! message in, its effect on the board and the records to produce out. The
//! runner does the I/O; tests call this directly.
//!
//! A message re-read to rebuild ([`Arrival::Rebuild`]: below the committed
//! offset, see [`super::positions`]) only rebuilds the board: its dead
//! letters and score updates were produced when it first arrived. A new message is counted, dead-lettered if
//! rejected, and marks its vendors for the next round of score updates
//! (after its batch, once the replica is ready).

use crate::catalog::{Catalog, VendorId};
use crate::engine::{Applied, Engine};
use crate::event::{Decoder, Event, RejectReason, Rejection, Timestamp};
use crate::pipeline::{self, Arrival, Outcome};
use crate::state::Board;
use crate::telemetry::Metrics;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A consumed message, borrowed from the consumer.
#[derive(Debug, Clone, Copy)]
pub struct InMessage<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub payload: &'a [u8],
    /// The message's timestamp (ms since the epoch), if it has one.
    pub timestamp_ms: Option<i64>,
}

/// A record to produce. A dead letter borrows the consumed message's bytes;
/// librdkafka copies them when it queues the record.
#[derive(Debug, Clone, PartialEq)]
pub enum Output<'a> {
    /// A rejected message with its original bytes, keyed by where it came
    /// from (`topic/partition/offset`): every replica that dead-letters it
    /// uses the same key.
    DeadLetter { payload: &'a [u8], reason: RejectReason, message: String, topic: &'a str, partition: i32, offset: i64 },
    /// A vendor's new score (key = vendor id, JSON).
    ScoreUpdate { key: String, payload: Vec<u8> },
}

/// The JSON of a score update.
#[derive(Debug, Serialize)]
struct ScoreUpdate<'a> {
    vendor: &'a str,
    score: f64,
    pressure: f64,
    components: BTreeMap<&'static str, f64>,
    as_of: Timestamp,
    event_id: &'a str,
    title: Option<&'a str>,
}

pub struct Processor {
    decoder: Decoder,
    catalog: Arc<Catalog>,
    /// Vendors whose score new events changed since the last round of
    /// updates, with the latest such event (id, title).
    touched: BTreeMap<VendorId, (String, Option<String>)>,
    /// The last score published per vendor.
    published: HashMap<VendorId, f64>,
    /// Kafka timestamps (ms) of new events applied since the last
    /// [`Processor::observe_latencies`]: one clock reading per turn of the
    /// loop, not one per message.
    applied_stamps: Vec<i64>,
}

impl Processor {
    pub fn new(decoder: Decoder) -> Self {
        let catalog = decoder.catalog().clone();
        Self { decoder, catalog, touched: BTreeMap::new(), published: HashMap::new(), applied_stamps: Vec::new() }
    }

    /// The step: one consumed message in, records to produce appended to
    /// `out`. The same as [`Processor::decode`] then [`Processor::apply`].
    pub fn process<'a>(
        &mut self,
        board: &mut Board,
        metrics: &Metrics,
        msg: &InMessage<'a>,
        arrival: Arrival,
        out: &mut Vec<Output<'a>>,
    ) {
        let decoded = self.decode(msg);
        self.apply(board, metrics, msg, decoded, arrival, out);
    }

    /// The first half of the step, which needs no board: decoding and
    /// validation, the costly part. The runner decodes a whole batch
    /// before it takes the board's write lock.
    pub fn decode<'a>(&self, msg: &InMessage<'a>) -> Result<Event<'a>, Rejection> {
        self.decoder.decode(msg.payload)
    }

    /// The second half of the step: a decoded message's effect on the
    /// board (counted, applied or dead-lettered), with records to produce
    /// appended to `out`.
    pub fn apply<'a>(
        &mut self,
        board: &mut Board,
        metrics: &Metrics,
        msg: &InMessage<'a>,
        decoded: Result<Event<'a>, Rejection>,
        arrival: Arrival,
        out: &mut Vec<Output<'a>>,
    ) {
        match decoded {
            Err(r) => {
                if arrival == Arrival::New {
                    tracing::warn!(topic = msg.topic, partition = msg.partition, offset = msg.offset, reason = %r.reason, "rejected event: {}", r.message);
                    out.push(Output::DeadLetter {
                        payload: msg.payload,
                        reason: r.reason,
                        message: r.message.clone(),
                        topic: msg.topic,
                        partition: msg.partition,
                        offset: msg.offset,
                    });
                }
                pipeline::count(&mut board.summary, metrics, &Outcome::Rejected(r), arrival);
            }
            Ok(event) => {
                let outcome = pipeline::apply_event(&mut board.engine, &event);
                pipeline::count(&mut board.summary, metrics, &outcome, arrival);
                if arrival == Arrival::New {
                    self.applied_stamps.extend(msg.timestamp_ms);
                    if matches!(outcome, Outcome::Applied { applied: Applied::Accepted, .. }) {
                        for v in event.vendors.iter() {
                            let (id, title) = self.touched.entry(v).or_default();
                            id.clear();
                            id.push_str(&event.id);
                            *title = event.title.as_deref().map(str::to_owned);
                        }
                    }
                }
            }
        }
    }

    /// Observes, for each new event applied since the last call, the time
    /// from its Kafka timestamp to `effective_at` (when the turn's effects
    /// became visible) in `chiprisk_event_latency_seconds`.
    pub fn observe_latencies(&mut self, metrics: &Metrics, effective_at: Timestamp) {
        let to_ms = effective_at.nanos() / 1_000_000;
        for ts in self.applied_stamps.drain(..) {
            // 0 if the producer's clock is ahead of ours.
            metrics.observe_event_latency((to_ms - ts).max(0) as f64 / 1000.0);
        }
    }

    /// Whether new events changed some vendor since the last round.
    pub fn updates_owed(&self) -> bool {
        !self.touched.is_empty()
    }

    /// A round of score updates, as of `at`: every vendor touched since the
    /// last round whose score differs from the one last published.
    pub fn score_updates(&mut self, engine: &Engine, at: Timestamp) -> Vec<Output<'static>> {
        let mut out = Vec::new();
        for (vendor, (event_id, title)) in std::mem::take(&mut self.touched) {
            let s = engine.score(vendor, at);
            if self.published.insert(vendor, s.score) == Some(s.score) {
                continue;
            }
            let id = &self.catalog.get(vendor).id;
            let update = ScoreUpdate {
                vendor: id,
                score: s.score,
                pressure: s.pressure,
                components: s.component_map(),
                as_of: at,
                event_id: &event_id,
                title: title.as_deref(),
            };
            out.push(Output::ScoreUpdate {
                key: id.clone(),
                payload: serde_json::to_vec(&update).expect("score updates serialize"),
            });
        }
        out
    }
}

/// The payload a dead letter can carry: the original bytes, cut to `room`
/// if they would not fit in a record the producer may send, with the
/// original length when cut.
pub fn dead_letter_payload(payload: &[u8], room: usize) -> (&[u8], Option<usize>) {
    if payload.len() <= room {
        (payload, None)
    } else {
        (&payload[..room], Some(payload.len()))
    }
}

#[cfg(test)]
mod tests;
