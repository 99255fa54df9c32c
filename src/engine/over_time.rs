//! A vendor's past: its score as of each step of a range, and the policy
//! and market moves on its timeline. Both are answers as of the times asked,
//! like every other query of the engine.

use super::{Engine, Score, Source};
use crate::catalog::VendorId;
use crate::event::{EventType, Role, Span, Timestamp};
use serde::Serialize;

/// Most points one history holds.
pub const MAX_HISTORY_POINTS: i64 = 2_000;

/// One step of a history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPoint {
    pub at: Timestamp,
    pub score: Score,
}

/// One mark on a timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEvent {
    pub occurred_at: Timestamp,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub event_id: String,
    pub title: Option<String>,
}

impl Engine {
    /// The vendor's score as of `from`, `from + step`, ... up to `to`
    /// (inclusive), at most [`MAX_HISTORY_POINTS`] points.
    pub fn history(&self, vendor: VendorId, from: Timestamp, to: Timestamp, step: Span) -> Vec<HistoryPoint> {
        assert!(step.nanos() > 0, "a positive step");
        let mut out = Vec::new();
        let mut at = from;
        while at <= to && (out.len() as i64) < MAX_HISTORY_POINTS {
            out.push(HistoryPoint { at, score: self.score(vendor, at) });
            // The last representable instant is the last point: a
            // saturating step would repeat it.
            let Some(next) = at.checked_add(step) else { break };
            at = next;
        }
        out
    }

    /// The vendor's events marked on a timeline ([`EventType::on_timeline`])
    /// that occurred within
    /// `from..=to`, oldest first, one per event.
    pub fn timeline(&self, vendor: VendorId, from: Timestamp, to: Timestamp) -> Vec<TimelineEvent> {
        let state = &self.vendors[vendor.index()];
        let mut sources: Vec<&Source> = state.standing.sources().collect();
        for kind in EventType::ALL.into_iter().filter(|k| k.on_timeline() && matches!(k.role(), Role::Decaying)) {
            sources.extend(state.decaying[kind as usize].iter().map(|d| &d.source));
        }
        sources.retain(|s| s.kind.on_timeline() && (from..=to).contains(&s.at));
        sources.sort_by_key(|s| (s.at, self.texts.get(s.id)));
        sources.dedup_by_key(|s| s.id);
        sources
            .into_iter()
            .map(|s| TimelineEvent {
                occurred_at: s.at,
                kind: s.kind,
                event_id: self.texts.get(s.id).to_owned(),
                title: self.title(s),
            })
            .collect()
    }

    /// When the earliest event held occurred.
    pub fn first_event_at(&self) -> Option<Timestamp> {
        self.vendors.iter().filter_map(|v| v.first_event).min()
    }
}
