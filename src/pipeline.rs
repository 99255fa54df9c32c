//! The one step every shell runs per message: decode, validate, apply.

use crate::engine::{Applied, Engine};
use crate::event::{Decoder, Event, EventType, RejectReason, Rejection};
use crate::telemetry::{EventOutcome, Metrics};
use std::time::Instant;

/// What one message did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Decoded and applied (or recognised as a duplicate).
    Applied { kind: EventType, applied: Applied },
    /// Refused at the edge; the engine is untouched.
    Rejected(Rejection),
}

/// Decodes one message and applies it to the engine.
pub fn process(decoder: &Decoder, engine: &mut Engine, bytes: &[u8]) -> Outcome {
    apply(engine, decoder.decode(bytes))
}

/// The second half of [`process`]: a decoded message's effect on the
/// engine (a shell that decodes without holding the engine calls it after).
pub fn apply(engine: &mut Engine, decoded: Result<Event<'_>, Rejection>) -> Outcome {
    match decoded {
        Ok(event) => apply_event(engine, &event),
        Err(rejection) => Outcome::Rejected(rejection),
    }
}

/// A valid event's effect on the engine (for a shell that still needs the
/// event afterwards).
pub fn apply_event(engine: &mut Engine, event: &Event<'_>) -> Outcome {
    Outcome::Applied { kind: event.kind, applied: engine.apply(event) }
}

/// The rejection for a message longer than the limit, whose bytes were not kept.
pub fn too_large(len: usize, limit: usize) -> Rejection {
    Rejection::new(RejectReason::TooLarge, format!("event is {len} bytes; the limit is {limit}"))
}

/// Where a message stands in the event log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Re-read at start, below the committed offset: it rebuilds the scores
    /// silently. It was counted, dead-lettered and published when it first
    /// arrived, so it is counted only as rebuild progress.
    Rebuild,
    /// Arrived while this process runs: counted as traffic.
    New,
}

/// [`process`], timed, and counted in `summary` and in the metrics.
pub fn process_counted(
    decoder: &Decoder,
    engine: &mut Engine,
    summary: &mut Summary,
    metrics: &Metrics,
    bytes: &[u8],
    arrival: Arrival,
) -> Outcome {
    let started = Instant::now();
    let outcome = process(decoder, engine, bytes);
    metrics.observe_processing(started.elapsed());
    count(summary, metrics, &outcome, arrival);
    outcome
}

/// Counts an outcome: always in the summary (what the state holds), and in
/// the metrics as traffic if it is new, as rebuild progress if it rebuilds.
pub fn count(summary: &mut Summary, metrics: &Metrics, outcome: &Outcome, arrival: Arrival) {
    summary.count(outcome);
    match arrival {
        Arrival::New => record(metrics, outcome),
        Arrival::Rebuild => metrics.rebuilt(),
    }
}

/// Counts an outcome in the metrics as an arrival.
fn record(metrics: &Metrics, outcome: &Outcome) {
    match outcome {
        Outcome::Applied { kind, applied: Applied::Accepted } => metrics.event_applied(*kind, EventOutcome::Accepted),
        Outcome::Applied { kind, applied: Applied::Duplicate } => metrics.event_applied(*kind, EventOutcome::Duplicate),
        Outcome::Rejected(r) => metrics.event_rejected(r.reason),
    }
}

/// Running totals, as `chiprisk replay` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
}

impl Summary {
    pub fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Applied { applied: Applied::Accepted, .. } => self.accepted += 1,
            Outcome::Applied { applied: Applied::Duplicate, .. } => self.duplicates += 1,
            Outcome::Rejected(_) => self.rejected += 1,
        }
    }
}
