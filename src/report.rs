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

/// `x` to `places` decimals, for people: a value that rounds to zero prints
/// `0.000`, never `-0.000` (a pressure decayed to a trillionth is no
/// pressure, whatever its sign). JSON keeps the exact values.
pub fn decimals(x: f64, places: usize) -> String {
    let s = format!("{x:.places$}");
    match s.strip_prefix('-') {
        Some(digits) if digits.bytes().all(|b| b == b'0' || b == b'.') => digits.to_owned(),
        _ => s,
    }
}

/// [`decimals`] with the sign always shown (`+0.125`, `-0.125`), but none
/// on a value that rounds to zero (`0.000`).
pub fn signed_decimals(x: f64, places: usize) -> String {
    let s = decimals(x, places);
    let zero = s.bytes().all(|b| b == b'0' || b == b'.');
    if zero || s.starts_with('-') || !x.is_finite() {
        s
    } else {
        format!("+{s}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_that_rounds_to_zero_prints_without_a_sign() {
        assert_eq!(decimals(-0.0, 3), "0.000");
        assert_eq!(decimals(-3.2e-5, 3), "0.000");
        assert_eq!(decimals(-0.0006, 3), "-0.001");
        assert_eq!(decimals(-0.0, 0), "0");
        assert_eq!(decimals(12.345_67, 1), "12.3");
        assert_eq!(signed_decimals(-3.2e-5, 3), "0.000");
        assert_eq!(signed_decimals(0.125, 3), "+0.125");
        assert_eq!(signed_decimals(-0.125, 3), "-0.125");
        assert_eq!(signed_decimals(f64::NAN, 3), "NaN");
    }
}
