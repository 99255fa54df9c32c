//! Decaying contributions, kept so that their sum as of any time T costs one
//! term per cell of time, not one per event.
//!
//! A contribution `w * m * 2^(-(T - t) / H)` factors, for any reference time
//! R, into `w * 2^(-(T - R) / H) * b`, where the bracket `b = m * 2^((t - R) / H)`
//! does not depend on T. Events fall into cells of a fixed width
//! `G = min(H / 4, 7 days)`, and R is the start of the event's cell, so a
//! bracket is at most `2^(1/4)` times `m`. Each cell keeps the exact sum of
//! its brackets, so as of T a cell that ended by T adds
//! `w * 2^(-(T - R) / H) * sum`: one power of two per cell. Only the cell
//! that contains T is read event by event, since its events after T do not
//! count yet.
//!
//! Every rounding is a function of one event (its bracket, rounded once to
//! the fixed-point grid) or of a cell's exact sum and T (its term, rounded
//! once), so the total depends only on the set of events and on T, never on
//! the order they arrived in.

use super::fixed::FixedSum;
use super::model::DecayModel;
use super::KeyHasher;
use super::Source;
use crate::event::Timestamp;
use std::hash::BuildHasherDefault;

const NANOS_PER_DAY: f64 = 86_400e9;

/// A decaying contribution to one vendor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Decaying {
    pub source: Source,
    /// Severity * confidence (* value for market signals), before weight and decay.
    pub magnitude: f64,
}

/// How one decaying type's events are grouped and weighed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    /// Cell width in nanoseconds (at least 1).
    width: i64,
    half_life_days: f64,
    half_life_nanos: f64,
    weight: f64,
}

impl Geometry {
    pub fn new(m: &DecayModel) -> Self {
        let width = (m.half_life_days * NANOS_PER_DAY / 4.0).clamp(1.0, 7.0 * NANOS_PER_DAY) as i64;
        Self {
            width,
            half_life_days: m.half_life_days,
            half_life_nanos: m.half_life_days * NANOS_PER_DAY,
            weight: m.weight,
        }
    }

    /// The contribution of one event as of `at` (which must not be before it).
    pub fn term(&self, d: &Decaying, at: Timestamp) -> f64 {
        self.weight * d.magnitude * self.factor(at, d.source.at)
    }

    /// `2^(-(later - earlier) / H)`.
    fn factor(&self, later: Timestamp, earlier: Timestamp) -> f64 {
        (-(later.seconds_since(earlier) / 86_400.0) / self.half_life_days).exp2()
    }

    fn cell_of(&self, at: Timestamp) -> i64 {
        at.nanos().div_euclid(self.width)
    }

    fn start(&self, cell: i64) -> Timestamp {
        let nanos = (i128::from(cell) * i128::from(self.width)).max(i128::from(i64::MIN));
        Timestamp::from_nanos(nanos as i64)
    }

    /// `m * 2^((t - start) / H)`, for an event in the cell that begins at `start`.
    fn bracket(&self, d: &Decaying, start: Timestamp) -> f64 {
        // Within one cell, so the offset is below the cell's width and fits
        // an i64 (even when `start` was clamped to the earliest timestamp).
        let offset = d.source.at.nanos().wrapping_sub(start.nanos());
        d.magnitude * (offset as f64 / self.half_life_nanos).exp2()
    }
}

/// One vendor's events of one decaying type, by cell. No query depends on
/// the cells' order (sums are exact), so a hash map: one cheap lookup per
/// event applied.
#[derive(Debug, Default)]
pub(crate) struct DecayBook {
    cells: hashbrown::HashMap<i64, Cell, BuildHasherDefault<KeyHasher>>,
}

/// Bytes of a cell in its map (key, cell and control byte, at the map's
/// 7/8 load), besides its items: for [`super::Engine::held_bytes`].
pub(crate) const CELL_BYTES: u64 = (size_of::<(i64, Cell)>() as u64 + 1) * 8 / 7;

#[derive(Debug, Default)]
struct Cell {
    /// The exact sum of the brackets of `items`.
    sum: FixedSum,
    /// The largest bracket in absolute value: bounds every item's term.
    max_abs: f64,
    /// Items with a non-zero magnitude.
    nonzero: usize,
    items: Vec<Decaying>,
}

/// One cell as of a time, for explanations.
pub(crate) struct CellAsOf<'a> {
    /// No item of the cell contributes more than this, in absolute value.
    pub bound: f64,
    /// Items at or before the time with a non-zero magnitude, if `bound` is
    /// not zero (otherwise every term is zero).
    pub counted: usize,
    /// The cell's items; those after the time do not count.
    pub items: &'a [Decaying],
}

impl DecayBook {
    /// Adds a contribution; returns whether it opened a new cell.
    pub fn add(&mut self, g: &Geometry, d: Decaying) -> bool {
        let cell = g.cell_of(d.source.at);
        let new = !self.cells.contains_key(&cell);
        let c = self.cells.entry(cell).or_default();
        let bracket = g.bracket(&d, g.start(cell));
        c.sum.add(bracket);
        c.max_abs = c.max_abs.max(bracket.abs());
        c.nonzero += usize::from(d.magnitude != 0.0);
        c.items.push(d);
        new
    }

    /// The sum of every contribution as of `at`; events after `at` do not count.
    pub fn total(&self, g: &Geometry, at: Timestamp) -> FixedSum {
        let mut total = FixedSum::default();
        let current = g.cell_of(at);
        for (&cell, c) in self.cells.iter().filter(|(&cell, _)| cell <= current) {
            let start = g.start(cell);
            let sum = if cell < current {
                c.sum
            } else {
                let mut partial = FixedSum::default();
                c.items.iter().filter(|d| d.source.at <= at).for_each(|d| partial.add(g.bracket(d, start)));
                partial
            };
            total.add(g.weight * g.factor(at, start) * sum.value());
        }
        total
    }

    /// Every event, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Decaying> {
        self.cells.values().flat_map(|c| c.items.iter())
    }

    /// The cells that hold events at or before `at`, each with a bound on its
    /// items' terms as of `at`, so that an explanation reads only the cells
    /// that can hold one of the largest terms.
    pub fn cells_as_of<'a>(&'a self, g: &'a Geometry, at: Timestamp) -> impl Iterator<Item = CellAsOf<'a>> + 'a {
        let current = g.cell_of(at);
        self.cells.iter().filter(move |(&cell, _)| cell <= current).map(move |(&cell, c)| {
            // A margin for rounding: the bound is computed another way than the terms.
            let bound = g.weight * g.factor(at, g.start(cell)) * c.max_abs * (1.0 + 1e-9);
            let counted = match () {
                _ if bound == 0.0 => 0,
                _ if cell < current => c.nonzero,
                _ => c.items.iter().filter(|d| d.source.at <= at && d.magnitude != 0.0).count(),
            };
            CellAsOf { bound, counted, items: &c.items }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::texts::Texts;
    use crate::event::EventType;

    const DAY: i64 = 86_400_000_000_000;

    fn book(model: &DecayModel, events: &[(i64, f64)]) -> (Geometry, DecayBook) {
        let g = Geometry::new(model);
        let mut texts = Texts::default();
        let mut b = DecayBook::default();
        for (i, &(at, magnitude)) in events.iter().enumerate() {
            let source = Source {
                id: texts.push(&i.to_string()),
                title: None,
                at: Timestamp::from_nanos(at),
                kind: EventType::MarketSignal,
            };
            b.add(&g, Decaying { source, magnitude });
        }
        (g, b)
    }

    #[test]
    fn cells_are_at_most_a_quarter_half_life_and_a_week() {
        let g = |h| Geometry::new(&DecayModel { weight: 1.0, default_severity: 0.5, half_life_days: h }).width;
        assert_eq!(g(20.0), 5 * DAY);
        assert_eq!(g(90.0), 7 * DAY);
        assert_eq!(g(1e-3), 21_600_000_000); // 21.6 s
    }

    #[test]
    fn the_total_is_the_sum_of_the_terms_and_leaves_out_later_events() {
        let m = DecayModel { weight: 0.3, default_severity: 0.5, half_life_days: 21.0 };
        let events: Vec<(i64, f64)> =
            (0..200).map(|i| (i * DAY / 3 + i * 7_919, if i % 5 == 0 { -0.4 } else { 0.7 })).collect();
        let (g, b) = book(&m, &events);
        for at_days in [-1, 0, 3, 17, 40, 66, 67, 500] {
            let at = Timestamp::from_nanos(at_days * DAY + DAY / 7);
            let direct: f64 = b.iter().filter(|d| d.source.at <= at).map(|d| g.term(d, at)).sum();
            let total = b.total(&g, at).value();
            assert!((total - direct).abs() < 1e-9, "as of day {at_days}: {total} against {direct}");
        }
        assert_eq!(b.total(&g, Timestamp::from_nanos(-1)).value(), 0.0);
    }

    #[test]
    fn events_before_1970_fall_into_their_own_cells() {
        let m = DecayModel { weight: 1.0, default_severity: 0.5, half_life_days: 21.0 };
        let (g, b) = book(&m, &[(-DAY / 2, 1.0), (DAY / 2, 1.0)]);
        let at = Timestamp::from_nanos(DAY);
        let direct = 2f64.powf(-1.5 / 21.0) + 2f64.powf(-0.5 / 21.0);
        assert!((b.total(&g, at).value() - direct).abs() < 1e-12);
        assert_eq!(b.cells.len(), 2);
    }
}
