//! The per-message step of the Kafka pipeline, without I/O: given a message
//! and the scoreboard, decide what to apply and what to publish. The runner
//! does the I/O; tests call this directly.
//!
//! **The local shortcut.** When stage 1 routes an event to a repartition
//! partition whose shard is here and live, it also applies the event to that
//! shard at once, so the score does not wait for the copy's trip through the
//! broker. The copy's key ([`CopyKey`]) records what applying it did and in
//! which shard instance (a number drawn anew on every assignment). When
//! stage 2 reads the copy back into that same instance, it counts the event
//! from the key (accepted or duplicate, as every event is counted when its
//! copy is read) without decoding or applying it again. A shard rebuilt
//! since, here or in another replica, has another instance, and applies the
//! copy like any other. Nothing else changes: offsets are still stored only
//! after the copy is acknowledged (stage 1) and read (stage 2), and a shard
//! rebuilt from its partition holds the same set of events. If the process
//! dies before the copy is acknowledged, the event is read again from the
//! events topic, since its offset was not stored.

use super::bundle;
use super::copy_key::{AppliedAhead, CopyKey};
use super::ownership;
use crate::catalog::{Catalog, VendorId, VendorSet};
use crate::engine::{id_key, Applied};
use crate::event::{Decoder, RejectReason, Rejection, Timestamp};
use crate::pipeline::{self, Outcome};
use crate::scoreboard::{Scoreboard, Shard};
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
    /// The message's timestamp (ms since the epoch), if it has one. Routed
    /// copies keep the original's, so stage 2 can measure end-to-end latency.
    pub timestamp_ms: Option<i64>,
    /// The message's key.
    pub key: Option<&'a [u8]>,
}

/// A record to produce. Payloads of routed copies and dead letters borrow
/// the consumed message's bytes; librdkafka copies them when it queues the
/// record.
#[derive(Debug, Clone, PartialEq)]
pub enum Output<'a> {
    /// An accepted event, copied to the repartition partition that owns
    /// some of its vendors.
    Route { partition: i32, payload: &'a [u8], timestamp_ms: Option<i64>, key: CopyKey },
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
    owners: ownership::Owners,
    /// The repartition partitions assigned here.
    assigned: HashMap<i32, Assigned>,
    /// Vendors whose score changed in live partitions since the last round
    /// of updates began, with the triggering event (id, title).
    touched: BTreeMap<VendorId, (String, Option<String>)>,
    /// The current round: vendors still to be scored and published.
    owed: BTreeMap<VendorId, (String, Option<String>)>,
    /// The last score published per vendor.
    published: HashMap<VendorId, f64>,
    /// Draws shard instances.
    instance_seed: u64,
    stamps: Stamps,
}

/// Kafka timestamps (ms since the epoch) of what was handled since the last
/// [`Processor::observe_latencies`]: one clock reading per turn of the loop,
/// not one per message.
#[derive(Debug, Default)]
struct Stamps {
    /// Of every message of the events topics read.
    read: Vec<i64>,
    /// Of every event counted on a live partition.
    applied: Vec<i64>,
}

/// A repartition partition assigned here.
#[derive(Debug, Clone, Copy)]
struct Assigned {
    phase: Phase,
    /// Its shard's instance: drawn anew on every assignment.
    instance: u64,
    /// The next offset to read.
    next_offset: i64,
}

impl Processor {
    pub fn new(decoder: Decoder, repartition_topic: String, partitions: i32) -> Self {
        let catalog = decoder.catalog().clone();
        Self {
            decoder,
            owners: ownership::Owners::new(&catalog, partitions),
            catalog,
            repartition_topic,
            assigned: HashMap::new(),
            touched: BTreeMap::new(),
            owed: BTreeMap::new(),
            published: HashMap::new(),
            instance_seed: process_seed(),
            stamps: Stamps::default(),
        }
    }

    pub fn repartition_topic(&self) -> &str {
        &self.repartition_topic
    }

    /// A repartition partition was assigned: a fresh shard that catches up
    /// to `committed` (the group's committed offset, if any).
    pub fn assign(&mut self, board: &mut Scoreboard, partition: i32, committed: Option<i64>) {
        board.add_shard(partition, self.owners.owned_by(partition));
        let phase = match committed {
            Some(until) if until > 0 => Phase::CatchingUp { until },
            _ => Phase::Live,
        };
        self.instance_seed = self.instance_seed.wrapping_add(1);
        self.assigned.insert(partition, Assigned { phase, instance: splitmix64(self.instance_seed), next_offset: 0 });
    }

    /// A repartition partition was revoked: its shard goes.
    pub fn revoke(&mut self, board: &mut Scoreboard, partition: i32) {
        board.remove_shard(partition);
        self.assigned.remove(&partition);
        let owned = self.owners.owned_by(partition);
        self.published.retain(|v, _| !owned.contains(*v));
        self.touched.retain(|v, _| !owned.contains(*v));
        self.owed.retain(|v, _| !owned.contains(*v));
    }

    /// Partitions still catching up.
    pub fn catching_up(&self) -> usize {
        self.assigned.values().filter(|a| matches!(a.phase, Phase::CatchingUp { .. })).count()
    }

    /// How far the catching-up partitions are: (offsets read, offsets to
    /// read), summed over them.
    pub fn catch_up_progress(&self) -> (u64, u64) {
        self.assigned.values().fold((0, 0), |(read, total), a| match a.phase {
            Phase::CatchingUp { until } => (read + a.next_offset.clamp(0, until) as u64, total + until.max(0) as u64),
            Phase::Live => (read, total),
        })
    }

    pub fn phase(&self, partition: i32) -> Option<Phase> {
        self.assigned.get(&partition).map(|a| a.phase)
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
        self.stamps.read.extend(msg.timestamp_ms);
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
                let Self { owners, assigned, touched, stamps, .. } = self;
                for (partition, vendors) in owners.split(event.vendors) {
                    // The local shortcut (module docs).
                    let mut ahead = None;
                    let live = assigned.get(&partition).filter(|a| a.phase == Phase::Live);
                    if let (Some(&Assigned { instance, .. }), Some(shard)) = (live, board.shard_mut(partition)) {
                        event.vendors = vendors;
                        let applied = shard.engine.apply(&event);
                        let counted = first_vendor.is_some_and(|v| vendors.contains(v));
                        // Its latency is taken now, once, whatever the outcome.
                        if counted {
                            stamps.applied.extend(msg.timestamp_ms);
                        }
                        if applied == Applied::Accepted {
                            touch(touched, vendors, &event.id, event.title.as_deref());
                        }
                        ahead = Some(AppliedAhead { shard: instance, kind: event.kind, applied, counted });
                    }
                    let key = CopyKey { event: id, ahead };
                    out.push(Output::Route { partition, payload: msg.payload, timestamp_ms: msg.timestamp_ms, key });
                }
            }
        }
    }

    /// Stage 2: apply a record of the repartition topic (one copy, or a
    /// [`bundle`] of them) to the partition's shard, for the vendors it owns.
    fn score<'a>(&mut self, board: &mut Scoreboard, metrics: &Metrics, msg: &InMessage<'a>, out: &mut Vec<Output<'a>>) {
        let Some(here) = self.assigned.get_mut(&msg.partition) else {
            return;
        };
        here.next_offset = msg.offset + 1;
        let Assigned { phase, instance, .. } = *here;
        let Some(shard) = board.shard_mut(msg.partition) else {
            return;
        };
        if msg.key == Some(bundle::KEY) {
            for entry in bundle::entries(msg.payload) {
                match entry {
                    Ok(e) => {
                        let copy =
                            InMessage { payload: e.payload, key: Some(e.key), timestamp_ms: e.timestamp_ms, ..*msg };
                        self.score_copy(shard, metrics, phase, instance, &copy, out);
                    }
                    // Written by someone else under chiprisk's key: what
                    // follows the break cannot be read as events.
                    Err(broken) => {
                        let r = Rejection { reason: RejectReason::MalformedJson, message: broken.to_string() };
                        let rest = InMessage { payload: &msg.payload[broken.at..], ..*msg };
                        dead_letter_copy(metrics, &rest, r, out);
                    }
                }
            }
        } else {
            self.score_copy(shard, metrics, phase, instance, msg, out);
        }
        if let Phase::CatchingUp { until } = phase {
            if msg.offset + 1 >= until {
                if let Some(here) = self.assigned.get_mut(&msg.partition) {
                    here.phase = Phase::Live;
                }
                tracing::info!(
                    topic = msg.topic,
                    partition = msg.partition,
                    offset = msg.offset,
                    "caught up; partition is live"
                );
            }
        }
    }

    /// One routed copy into its shard (`phase` and `instance` are the
    /// shard's as the record holding the copy found them).
    fn score_copy<'a>(
        &mut self,
        shard: &mut Shard,
        metrics: &Metrics,
        phase: Phase,
        instance: u64,
        msg: &InMessage<'a>,
        out: &mut Vec<Output<'a>>,
    ) {
        // The copy of an event the local shortcut applied to this very
        // shard: count it now, as the key says, without decoding it again.
        if let Some(a) = msg.key.and_then(CopyKey::parse).and_then(|k| k.ahead).filter(|a| a.shard == instance) {
            if a.counted {
                let outcome = Outcome::Applied { kind: a.kind, applied: a.applied };
                pipeline::record(metrics, &outcome);
                shard.summary.count(&outcome);
            }
            return;
        }
        match self.decoder.decode(msg.payload) {
            // Stage 1 validated it; a failure here means the topic was written
            // by someone else, or the limits changed. Dead-letter it too.
            Err(r) => dead_letter_copy(metrics, msg, r, out),
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
                    if counted {
                        let outcome = Outcome::Applied { kind: event.kind, applied };
                        pipeline::record(metrics, &outcome);
                        shard.summary.count(&outcome);
                    }
                    if phase == Phase::Live && counted {
                        self.stamps.applied.extend(msg.timestamp_ms);
                    }
                    if phase == Phase::Live && applied == Applied::Accepted {
                        touch(&mut self.touched, mine, &event.id, event.title.as_deref());
                    }
                }
            }
        }
    }

    /// Observes the latencies of what was handled since the last call: from
    /// each message's Kafka timestamp to `read_at` (when its turn of the loop
    /// read it) in `chiprisk_kafka_read_latency_seconds`, and, for counted
    /// events, to `effective_at` (when the turn's effects became visible) in
    /// `chiprisk_event_latency_seconds`.
    pub fn observe_latencies(&mut self, metrics: &Metrics, read_at: Timestamp, effective_at: Timestamp) {
        for ts in self.stamps.read.drain(..) {
            metrics.kafka().observe_read_latency(seconds_between(ts, read_at));
        }
        for ts in self.stamps.applied.drain(..) {
            metrics.observe_event_latency(seconds_between(ts, effective_at));
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

/// Dead-letters what the repartition topic holds but stage 2 cannot read:
/// an invalid copy, or the rest of a broken bundle. Stage 1 validated every
/// event it routed, so this is an error, not bad input.
fn dead_letter_copy<'a>(metrics: &Metrics, msg: &InMessage<'a>, r: Rejection, out: &mut Vec<Output<'a>>) {
    metrics.event_rejected(r.reason);
    tracing::error!(topic = msg.topic, partition = msg.partition, offset = msg.offset, reason = %r.reason, "unreadable record on the repartition topic, dead-lettered: {}", r.message);
    out.push(Output::dead_letter(msg, r));
}

/// A number that differs from process to process (and from run to run).
fn process_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one((std::process::id(), Timestamp::now().nanos()))
}

/// A bijection of 64-bit numbers that scatters consecutive ones (SplitMix64's
/// finaliser): consecutive seeds give unrelated-looking shard instances.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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

/// Seconds from a Kafka timestamp (ms since the epoch) to `to`; 0 if it is
/// later (clock skew between producer and consumer).
fn seconds_between(timestamp_ms: i64, to: Timestamp) -> f64 {
    let to_ms = to.nanos() / 1_000_000;
    (to_ms - timestamp_ms).max(0) as f64 / 1000.0
}

#[cfg(test)]
mod tests;
