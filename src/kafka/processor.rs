//! The per-message step of the Kafka pipeline, without I/O: given a message
//! and the scoreboard, decide what to apply and what to publish. The runner
//! does the I/O; tests call this directly.
//!
//! **The local shortcut.** When stage 1 routes an event to a repartition
//! partition whose shard is here and live, it also applies the event to that
//! shard at once, so the score does not wait for the copy's trip through the
//! broker. The copy, when stage 2 reads it, finds the event applied; it is
//! counted then (accepted, not a duplicate), as every event is counted when
//! its copy is read. Nothing else changes: offsets are still stored only
//! after the copy is acknowledged (stage 1) and read (stage 2), and a shard
//! rebuilt from its partition holds the same set of events. If the process
//! dies before the copy is acknowledged, the event is read again from the
//! events topic, since its offset was not stored.

use super::ownership;
use crate::catalog::{Catalog, VendorId, VendorSet};
use crate::engine::{id_key, Applied, IdMap};
use crate::event::{Decoder, EventType, RejectReason, Rejection, Timestamp};
use crate::pipeline::Outcome;
use crate::scoreboard::Scoreboard;
use crate::telemetry::{EventOutcome, Metrics};
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
    /// The message's timestamp (ms since the epoch), if it has one. Routed
    /// copies keep the original's, so stage 2 can measure end-to-end latency.
    pub timestamp_ms: Option<i64>,
    /// The message's key.
    pub key: Option<&'a [u8]>,
}

/// The key of a routed copy: the 128-bit hash of its event's id
/// ([`id_key`]), 32 hex digits. It names the event, so that a copy whose
/// event the local shortcut applied is counted without being decoded again.
pub fn event_key(event: u128) -> [u8; 32] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut key = [0; 32];
    for (i, digit) in key.iter_mut().enumerate() {
        *digit = HEX[((event >> (124 - 4 * i)) & 0xf) as usize];
    }
    key
}

/// Reads an [`event_key`]; `None` for any other key.
pub fn parse_event_key(key: &[u8]) -> Option<u128> {
    if key.len() != 32 {
        return None;
    }
    key.iter().try_fold(0u128, |n, &b| Some(n << 4 | u128::from((b as char).to_digit(16)?)))
}

/// A record to produce. Payloads of routed copies and dead letters borrow
/// the consumed message's bytes; librdkafka copies them when it queues the
/// record.
#[derive(Debug, Clone, PartialEq)]
pub enum Output<'a> {
    /// An accepted event, copied to the repartition partition that owns
    /// some of its vendors; keyed by [`event_key`].
    Route { partition: i32, payload: &'a [u8], timestamp_ms: Option<i64>, event: u128 },
    /// A rejected message with its original bytes.
    DeadLetter { payload: &'a [u8], reason: RejectReason, message: String, topic: &'a str, partition: i32, offset: i64 },
    /// A vendor's new score (key = vendor id, JSON).
    ScoreUpdate { key: String, payload: Vec<u8> },
}

impl<'a> Output<'a> {
    /// The dead letter of a rejected message: its bytes, the reason and where it came from.
    fn dead_letter(msg: &InMessage<'a>, r: Rejection) -> Self {
        Output::DeadLetter {
            payload: msg.payload,
            reason: r.reason,
            message: r.message,
            topic: msg.topic,
            partition: msg.partition,
            offset: msg.offset,
        }
    }
}

/// Where a repartition partition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Replaying history up to (not including) this offset: nothing is published.
    CatchingUp {
        until: i64,
    },
    Live,
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
    repartition_topic: String,
    partitions: i32,
    owners: ownership::Owners,
    phases: HashMap<i32, Phase>,
    /// Vendors whose score changed in live partitions since the last round
    /// of updates began, with the triggering event (id, title).
    touched: BTreeMap<VendorId, (String, Option<String>)>,
    /// The current round: vendors still to be scored and published.
    owed: BTreeMap<VendorId, (String, Option<String>)>,
    /// The last score published per vendor.
    published: HashMap<VendorId, f64>,
    /// Per repartition partition: events (id hash) the local shortcut
    /// applied whose copies have not been read yet, with their type and
    /// whether this partition counts them (their first vendor's).
    applied_ahead: HashMap<i32, IdMap<(EventType, bool)>>,
    /// Per catching-up partition: the next offset to read.
    catch_up_next: HashMap<i32, i64>,
}

impl Processor {
    pub fn new(decoder: Decoder, repartition_topic: String, partitions: i32) -> Self {
        let catalog = decoder.catalog().clone();
        Self {
            decoder,
            owners: ownership::Owners::new(&catalog, partitions),
            catalog,
            repartition_topic,
            partitions,
            phases: HashMap::new(),
            touched: BTreeMap::new(),
            owed: BTreeMap::new(),
            published: HashMap::new(),
            applied_ahead: HashMap::new(),
            catch_up_next: HashMap::new(),
        }
    }

    pub fn repartition_topic(&self) -> &str {
        &self.repartition_topic
    }

    /// A repartition partition was assigned: a fresh shard that catches up
    /// to `committed` (the group's committed offset, if any).
    pub fn assign(&mut self, board: &mut Scoreboard, partition: i32, committed: Option<i64>) {
        board.add_shard(partition, ownership::owned_by(&self.catalog, partition, self.partitions));
        let phase = match committed {
            Some(until) if until > 0 => Phase::CatchingUp { until },
            _ => Phase::Live,
        };
        self.phases.insert(partition, phase);
        self.applied_ahead.remove(&partition);
        self.catch_up_next.remove(&partition);
    }

    /// A repartition partition was revoked: its shard goes.
    pub fn revoke(&mut self, board: &mut Scoreboard, partition: i32) {
        board.remove_shard(partition);
        self.phases.remove(&partition);
        self.applied_ahead.remove(&partition);
        self.catch_up_next.remove(&partition);
        let owned = ownership::owned_by(&self.catalog, partition, self.partitions);
        self.published.retain(|v, _| !owned.contains(*v));
        self.touched.retain(|v, _| !owned.contains(*v));
        self.owed.retain(|v, _| !owned.contains(*v));
    }

    /// Partitions still catching up.
    pub fn catching_up(&self) -> usize {
        self.phases.values().filter(|p| matches!(p, Phase::CatchingUp { .. })).count()
    }

    /// How far the catching-up partitions are: (offsets read, offsets to
    /// read), summed over them.
    pub fn catch_up_progress(&self) -> (u64, u64) {
        self.phases.iter().fold((0, 0), |(read, total), (partition, phase)| match phase {
            Phase::CatchingUp { until } => {
                let next = self.catch_up_next.get(partition).copied().unwrap_or(0);
                (read + next.clamp(0, *until) as u64, total + (*until).max(0) as u64)
            }
            Phase::Live => (read, total),
        })
    }

    pub fn phase(&self, partition: i32) -> Option<Phase> {
        self.phases.get(&partition).copied()
    }

    /// The step: one consumed message in, records to produce appended to `out`.
    pub fn process<'a>(
        &mut self,
        board: &mut Scoreboard,
        metrics: &Metrics,
        msg: &InMessage<'a>,
        out: &mut Vec<Output<'a>>,
    ) {
        if msg.topic == self.repartition_topic {
            self.score(board, metrics, msg, out)
        } else {
            self.route(board, metrics, msg, out)
        }
    }

    /// Stage 1: validate, then route by vendor or dead-letter.
    fn route<'a>(&mut self, board: &mut Scoreboard, metrics: &Metrics, msg: &InMessage<'a>, out: &mut Vec<Output<'a>>) {
        if let Some(ts) = msg.timestamp_ms {
            metrics.kafka().observe_read_latency(since_ms(ts));
        }
        match self.decoder.decode(msg.payload) {
            Err(r) => {
                metrics.event_rejected(r.reason);
                board.unsharded.count(&Outcome::Rejected(r.clone()));
                tracing::warn!(topic = msg.topic, partition = msg.partition, offset = msg.offset, reason = %r.reason, "rejected event: {}", r.message);
                out.push(Output::dead_letter(msg, r));
            }
            Ok(mut event) => {
                let first_vendor = event.vendors.iter().next();
                let id = id_key(&event.id);
                let Self { owners, phases, applied_ahead, touched, .. } = self;
                for (partition, vendors) in owners.split(event.vendors) {
                    // The local shortcut (module docs).
                    if phases.get(&partition) == Some(&Phase::Live) {
                        if let Some(shard) = board.shard_mut(partition) {
                            event.vendors = vendors;
                            if shard.engine.apply(&event) == Applied::Accepted {
                                let counted = first_vendor.is_some_and(|v| vendors.contains(v));
                                applied_ahead.entry(partition).or_default().insert(id, (event.kind, counted));
                                if counted {
                                    if let Some(ts) = msg.timestamp_ms {
                                        metrics.observe_event_latency(since_ms(ts));
                                    }
                                }
                                touch(touched, vendors, &event.id, event.title.as_deref());
                            }
                        }
                    }
                    out.push(Output::Route {
                        partition,
                        payload: msg.payload,
                        timestamp_ms: msg.timestamp_ms,
                        event: id,
                    });
                }
            }
        }
    }

    /// Stage 2: apply to the partition's shard, for the vendors it owns.
    fn score<'a>(&mut self, board: &mut Scoreboard, metrics: &Metrics, msg: &InMessage<'a>, out: &mut Vec<Output<'a>>) {
        let Some(phase) = self.phases.get(&msg.partition).copied() else {
            return;
        };
        let Some(shard) = board.shard_mut(msg.partition) else {
            return;
        };
        // The copy of an event the local shortcut applied: count it now,
        // without decoding it again (it was validated when routed).
        if let Some((kind, counted)) = msg
            .key
            .and_then(parse_event_key)
            .and_then(|id| self.applied_ahead.get_mut(&msg.partition).and_then(|ahead| ahead.remove(&id)))
        {
            if counted {
                metrics.event_applied(kind, EventOutcome::Accepted);
                shard.summary.count(&Outcome::Applied { kind, applied: Applied::Accepted });
            }
            return;
        }
        match self.decoder.decode(msg.payload) {
            // Stage 1 validated it; a failure here means the topic was written
            // by someone else, or the limits changed. Dead-letter it too.
            Err(r) => {
                metrics.event_rejected(r.reason);
                tracing::error!(topic = msg.topic, partition = msg.partition, offset = msg.offset, reason = %r.reason, "invalid event on the repartition topic, dead-lettered: {}", r.message);
                out.push(Output::dead_letter(msg, r));
            }
            Ok(mut event) => {
                // An event that spans partitions is counted (summary, metrics)
                // only in the shard of its first vendor: once over all replicas.
                let counted = event.vendors.iter().next().is_some_and(|v| shard.owned.contains(v));
                let mut mine = VendorSet::default();
                for v in event.vendors.iter().filter(|v| shard.owned.contains(*v)) {
                    mine.insert(v);
                }
                if !mine.is_empty() {
                    event.vendors = mine;
                    let applied = shard.engine.apply(&event);
                    // Applied already by the local shortcut: this read is
                    // where it counts, as accepted; its latency and score
                    // update were taken care of then.
                    let ahead = applied == Applied::Duplicate
                        && self
                            .applied_ahead
                            .get_mut(&msg.partition)
                            .is_some_and(|ids| ids.remove(&id_key(&event.id)).is_some());
                    let applied = if ahead { Applied::Accepted } else { applied };
                    let outcome = match applied {
                        Applied::Accepted => EventOutcome::Accepted,
                        Applied::Duplicate => EventOutcome::Duplicate,
                    };
                    if counted {
                        metrics.event_applied(event.kind, outcome);
                        shard.summary.count(&Outcome::Applied { kind: event.kind, applied });
                    }
                    if phase == Phase::Live && counted && !ahead {
                        if let Some(ts) = msg.timestamp_ms {
                            metrics.observe_event_latency(since_ms(ts));
                        }
                    }
                    if phase == Phase::Live && applied == Applied::Accepted && !ahead {
                        touch(&mut self.touched, mine, &event.id, event.title.as_deref());
                    }
                }
            }
        }
        if let Phase::CatchingUp { until } = phase {
            self.catch_up_next.insert(msg.partition, msg.offset + 1);
            if msg.offset + 1 >= until {
                self.phases.insert(msg.partition, Phase::Live);
                self.catch_up_next.remove(&msg.partition);
                tracing::info!(
                    topic = msg.topic,
                    partition = msg.partition,
                    offset = msg.offset,
                    "caught up; partition is live"
                );
            }
        }
    }

    /// Begins a round of score updates: every vendor touched since the last
    /// round is now owed one.
    pub fn start_update_round(&mut self) {
        self.owed.append(&mut self.touched);
    }

    /// Whether a round is under way (vendors still owed an update).
    pub fn updates_owed(&self) -> bool {
        !self.owed.is_empty()
    }

    /// Score updates, as of `at`, for up to `max_vendors` of the vendors the
    /// round owes one. Scoring a vendor costs one term per cell of time
    /// plus its bans (under a millisecond with a million events held); the
    /// caller still spreads a round over several calls, so that no turn is
    /// held up by a whole round.
    pub fn flush_updates(&mut self, board: &Scoreboard, at: Timestamp, max_vendors: usize) -> Vec<Output<'static>> {
        let mut out = Vec::new();
        for _ in 0..max_vendors {
            let Some((vendor, (event_id, title))) = self.owed.pop_first() else { break };
            let Some(engine) = board.owner(vendor) else { continue };
            let s = engine.score(vendor, at);
            if self.published.get(&vendor) == Some(&s.score) {
                continue;
            }
            self.published.insert(vendor, s.score);
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

/// Notes that the vendors' scores changed, by this event; reuses the
/// strings of an earlier note.
fn touch(
    touched: &mut BTreeMap<VendorId, (String, Option<String>)>,
    vendors: VendorSet,
    event_id: &str,
    title: Option<&str>,
) {
    for v in vendors.iter() {
        let (id, t) = touched.entry(v).or_default();
        id.clear();
        id.push_str(event_id);
        match (t.as_mut(), title) {
            (Some(t), Some(title)) => {
                t.clear();
                t.push_str(title);
            }
            (_, title) => *t = title.map(str::to_owned),
        }
    }
}

/// Seconds from a Kafka timestamp (ms since the epoch) to now; 0 if it is
/// in the future (clock skew between producer and consumer).
fn since_ms(timestamp_ms: i64) -> f64 {
    let now_ms = Timestamp::now().nanos() / 1_000_000;
    (now_ms - timestamp_ms).max(0) as f64 / 1000.0
}

#[cfg(test)]
mod tests;
