//! The scores report: every vendor's explained score as of a time, with the
//! ingest summary. `chiprisk replay --format json` prints it and
//! `/api/v1/scores` serves it; both have this one shape.

use crate::engine::{Engine, Explanation};
use crate::event::Timestamp;
use crate::pipeline::Summary;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoresReport {
    pub as_of: Timestamp,
    /// In catalog order.
    pub vendors: Vec<Explanation>,
    pub summary: Summary,
}

impl ScoresReport {
    pub fn build(engine: &Engine, at: Timestamp, max_contributions: usize, summary: Summary) -> Self {
        let vendors = engine.catalog().ids().map(|v| engine.explain(v, at, max_contributions)).collect();
        Self { as_of: at, vendors, summary }
    }

    /// The vendors, highest score first (catalog order among equals).
    pub fn ranked(&self) -> Vec<&Explanation> {
        let mut v: Vec<&Explanation> = self.vendors.iter().collect();
        v.sort_by(|a, b| b.score.total_cmp(&a.score));
        v
    }
}
