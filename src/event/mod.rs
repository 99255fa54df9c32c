//! Event schema v1: the validated [`Event`], and the [`Decoder`] that turns
//! raw bytes into one or a [`Rejection`].
//!
//! Parsing happens once, here, at the edge: everything downstream receives
//! events whose vendors are in the catalog, whose times are parsed and whose
//! numbers are in range.

mod decode;
mod kind;
mod limits;
mod reject;
mod time;

pub use decode::{Decoder, MAX_UNKNOWN_FIELDS};
pub use kind::{BanKind, Component, EventType, Role, TimelineRow};
pub use limits::{Limits, MAX_ID_CHARS};
pub use reject::{RejectReason, Rejection};
pub use time::{parse_step, parse_when, Span, Timestamp, TimestampError};

use crate::catalog::VendorSet;
use std::borrow::Cow;

/// The only schema version this build reads.
pub const SCHEMA_VERSION: u64 = 1;

/// A validated event. Strings borrow from the input where they can, so
/// decoding a message allocates little.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    /// Unique id; a second event with the same id is a duplicate.
    pub id: Cow<'a, str>,
    pub kind: EventType,
    /// When it happened (event time, not arrival time).
    pub occurred_at: Timestamp,
    /// The vendors whose China risk this event moves; never empty.
    pub vendors: VendorSet,
    /// Products the event is about; empty means the vendor as a whole.
    pub products: Vec<Cow<'a, str>>,
    /// In [0, 1]; `None` takes the type's default from the scoring model.
    pub severity: Option<f64>,
    /// In [0, 1]; 1.0 unless the producer says it is a rumour.
    pub confidence: f64,
    /// In [-1, 1]; present exactly for `market_signal`.
    pub value: Option<f64>,
    pub actor: Option<Cow<'a, str>>,
    pub title: Option<Cow<'a, str>>,
    pub source_url: Option<Cow<'a, str>>,
}

impl Event<'_> {
    /// A copy that owns its strings.
    pub fn into_owned(self) -> Event<'static> {
        let own = |s: Cow<'_, str>| Cow::Owned(s.into_owned());
        Event {
            id: own(self.id),
            kind: self.kind,
            occurred_at: self.occurred_at,
            vendors: self.vendors,
            products: self.products.into_iter().map(own).collect(),
            severity: self.severity,
            confidence: self.confidence,
            value: self.value,
            actor: self.actor.map(own),
            title: self.title.map(own),
            source_url: self.source_url.map(own),
        }
    }
}
