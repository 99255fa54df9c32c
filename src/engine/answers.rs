//! What the engine answers: scores and their explanations.

use crate::event::{BanKind, Component, EventType, Timestamp};
use serde::Serialize;
use std::collections::BTreeMap;

/// A vendor's score as of a time, without the explanation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// In [0, 100].
    pub score: f64,
    /// Total pressure before saturation (may be negative).
    pub pressure: f64,
    /// Pressure per component, indexed by [`Component::index`].
    pub components: [f64; 5],
}

impl Score {
    pub fn component(&self, c: Component) -> f64 {
        self.components[c.index()]
    }

    /// Components as a name-to-pressure map, for JSON.
    pub fn component_map(&self) -> BTreeMap<&'static str, f64> {
        Component::ALL.iter().map(|c| (c.as_str(), self.component(*c))).collect()
    }
}

/// Why a vendor's score is what it is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    pub vendor: String,
    pub name: String,
    pub origin: String,
    pub as_of: Timestamp,
    pub score: f64,
    pub pressure: f64,
    pub components: BTreeMap<&'static str, f64>,
    /// By kind, then scope; at most [`super::MAX_BANS_LISTED`] of a kind
    /// (then the newest).
    pub bans_in_force: Vec<BanInForce>,
    /// Bans in force that the list above leaves out.
    pub other_bans_in_force: usize,
    /// The largest contributions, largest first.
    pub contributions: Vec<Contribution>,
    /// What the list above leaves out.
    pub other_contributions: OtherContributions,
    pub last_event_at: Option<Timestamp>,
}

impl Explanation {
    /// One component's pressure.
    pub fn component(&self, c: Component) -> f64 {
        self.components.get(c.as_str()).copied().unwrap_or(0.0)
    }

    /// The score without the explanation.
    pub fn as_score(&self) -> Score {
        Score { score: self.score, pressure: self.pressure, components: Component::ALL.map(|c| self.component(c)) }
    }
}

/// One event's share of the score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contribution {
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub title: Option<String>,
    pub component: Component,
    /// Pressure this event adds as of the explanation's time.
    pub contribution: f64,
    pub occurred_at: Timestamp,
    /// For bans: the product banned; `None` is the vendor as a whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
}

/// A ban that holds as of the explanation's time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BanInForce {
    pub kind: BanKind,
    /// `None`: the ban covers the vendor as a whole.
    pub product: Option<String>,
    pub event_id: String,
    pub title: Option<String>,
    pub since: Timestamp,
    /// Fraction of the ban's pressure removed by a licence, in [0, 1].
    pub relief: f64,
    pub licence_event_id: Option<String>,
    pub contribution: f64,
}

/// A lift that ended at least one ban.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lift {
    pub kind: BanKind,
    /// `None`: the lift covers the vendor as a whole.
    pub product: Option<String>,
    pub event_id: String,
    pub title: Option<String>,
    pub occurred_at: Timestamp,
}

/// A ban imposed or lifted: what policy alerts notify.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PolicyChange {
    pub kind: BanKind,
    /// `false`: imposed; `true`: lifted (and it ended a ban in force).
    pub lifted: bool,
    /// The products it names; empty: the vendor as a whole.
    pub products: Vec<String>,
    pub event_id: String,
    pub title: Option<String>,
    pub source_url: Option<String>,
    pub occurred_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct OtherContributions {
    pub count: usize,
    pub pressure: f64,
}
