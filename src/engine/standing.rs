//! Standing conditions: bans hold, without decaying, until a matching lift;
//! licences relieve matching export bans in part.
//!
//! Matching, as of a time T (only records at or before T count):
//! - a lift for the vendor as a whole ends every earlier ban of its kind for
//!   that vendor; a lift for a product ends earlier bans on that product;
//! - a ban is in force if no matching lift occurred at or after it (a lift at
//!   the same instant wins);
//! - a licence relieves bans in force that it matches the same way and that
//!   began at or before it; a ban imposed after the licence is not relieved.
//!
//! Within one scope (the vendor as a whole, or one product) the strongest ban
//! in force governs, so a repeated announcement does not count twice. Scopes
//! combine as `weight * (1 - prod(1 - f_i))`, where `f_i` is each governing
//! ban's fraction of a full ban: every further ban adds, with diminishing
//! returns, and no vendor is more banned than by a full ban.

use super::texts::Texts;
use super::{ProductId, Source};
use crate::engine::model::ScoringModel;
use crate::event::{BanKind, Timestamp};
use std::cmp::Ordering;
use std::collections::HashMap;

/// One ban, lift or licence for one vendor and one scope.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Standing {
    pub source: Source,
    /// `None`: the vendor as a whole.
    pub scope: Option<ProductId>,
    /// Severity times confidence.
    pub strength: f64,
}

/// A vendor's standing records.
#[derive(Debug, Default)]
pub(crate) struct StandingBook {
    bans: [Vec<Standing>; 2],
    lifts: [Vec<Standing>; 2],
    licences: Vec<Standing>,
}

/// The bans of one kind in force for one vendor.
#[derive(Debug, Clone, Default)]
pub(crate) struct InForce {
    /// One per scope, ordered by scope; amounts scaled to add up to `total`.
    pub governing: Vec<Governing>,
    /// Their combined pressure, at most `weight`. Computed once from the
    /// unscaled amounts so that it rises monotonically with any ban's
    /// severity (rescaled parts could lose a rounding unit).
    pub total: f64,
}

/// The ban that governs one scope, and what it adds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Governing {
    pub ban: Standing,
    pub relief: f64,
    pub licence: Option<Source>,
    /// Pressure after relief and after the cap.
    pub amount: f64,
}

impl StandingBook {
    pub fn add_ban(&mut self, kind: BanKind, s: Standing) {
        self.bans[kind as usize].push(s);
    }

    pub fn add_lift(&mut self, kind: BanKind, s: Standing) {
        self.lifts[kind as usize].push(s);
    }

    pub fn add_licence(&mut self, s: Standing) {
        self.licences.push(s);
    }

    /// The governing ban of every scope in force at `at`, ordered by scope.
    pub fn in_force(
        &self,
        kind: BanKind,
        at: Timestamp,
        model: &ScoringModel,
        scope_order: impl Fn(Option<ProductId>) -> String,
        texts: &Texts,
    ) -> InForce {
        let id_of = |s: &Source| texts.get(s.id);
        let params = model.ban(kind);
        let mut wide_lift: Option<Timestamp> = None;
        let mut product_lift: HashMap<ProductId, Timestamp> = HashMap::new();
        for l in self.lifts[kind as usize].iter().filter(|l| l.source.at <= at) {
            match l.scope {
                None => wide_lift = wide_lift.max(Some(l.source.at)),
                Some(p) => {
                    let t = product_lift.entry(p).or_insert(l.source.at);
                    *t = (*t).max(l.source.at);
                }
            }
        }

        let mut governing: Vec<Governing> = Vec::new();
        for b in self.bans[kind as usize].iter().filter(|b| b.source.at <= at) {
            let last_lift = match b.scope {
                None => wide_lift,
                Some(p) => wide_lift.max(product_lift.get(&p).copied()),
            };
            if last_lift.is_some_and(|l| l >= b.source.at) {
                continue;
            }
            let (relief, licence) = match kind {
                BanKind::Export => self.relief(b, at, model, texts),
                BanKind::Purchase => (0.0, None),
            };
            let share = if b.scope.is_some() { params.product_share } else { 1.0 };
            let amount = params.weight * share * b.strength * (1.0 - relief);
            let candidate = Governing { ban: *b, relief, licence, amount };
            match governing.iter_mut().find(|g| g.ban.scope == b.scope) {
                None => governing.push(candidate),
                Some(g) => {
                    let stronger = amount.total_cmp(&g.amount).then_with(|| id_of(&g.ban.source).cmp(id_of(&b.source)));
                    if stronger == Ordering::Greater {
                        *g = candidate;
                    }
                }
            }
        }

        // Sorted first, so that the result does not depend on arrival order.
        governing.sort_by_cached_key(|g| scope_order(g.ban.scope));
        // Scopes combine like independent chances of being blocked:
        // weight * (1 - prod(1 - share_i)), so every further ban adds, with
        // diminishing returns, and the total never exceeds a full ban.
        let open: f64 = governing.iter().map(|g| 1.0 - (g.amount / params.weight).clamp(0.0, 1.0)).product();
        let capped = if params.weight > 0.0 { params.weight * (1.0 - open) } else { 0.0 };
        let raw: f64 = governing.iter().map(|g| g.amount).sum();
        if raw > 0.0 {
            // Shown contributions are scaled to add up to the combined total.
            let factor = capped / raw;
            governing.iter_mut().for_each(|g| g.amount *= factor);
        }
        InForce { governing, total: capped }
    }

    /// The latest lift of this kind, as of `at`, that ended at least one ban
    /// (a lift matching nothing is recorded but is not news). Ties in time go
    /// to the smaller event id.
    /// One lift event with several products yields the smallest product (by
    /// `scope_order`), so the answer does not depend on arrival order.
    pub fn last_effective_lift(
        &self,
        kind: BanKind,
        at: Timestamp,
        texts: &Texts,
        scope_order: impl Fn(Option<ProductId>) -> String,
    ) -> Option<Standing> {
        let lifts = &self.lifts[kind as usize];
        let matches = |lift: &Standing, ban: &Standing| lift.scope.is_none() || lift.scope == ban.scope;
        // Whether `a` comes before `b` among lifts.
        let before =
            |a: &Standing, b: &Standing| (a.source.at, texts.get(a.source.id)) < (b.source.at, texts.get(b.source.id));
        let ended_a_ban = |l: &Standing| {
            self.bans[kind as usize].iter().any(|b| {
                b.source.at <= l.source.at
                    && matches(l, b)
                    && !lifts
                        .iter()
                        .any(|e| e.source.at <= at && matches(e, b) && b.source.at <= e.source.at && before(e, l))
            })
        };
        lifts
            .iter()
            .filter(|l| l.source.at <= at && ended_a_ban(l))
            .max_by(|a, b| {
                (a.source.at, texts.get(b.source.id), scope_order(b.scope)).cmp(&(
                    b.source.at,
                    texts.get(a.source.id),
                    scope_order(a.scope),
                ))
            })
            .copied()
    }

    /// The largest relief any licence gives this ban as of `at`.
    fn relief(&self, ban: &Standing, at: Timestamp, model: &ScoringModel, texts: &Texts) -> (f64, Option<Source>) {
        let id_of = |s: &Source| texts.get(s.id);
        let mut best: (f64, Option<Source>) = (0.0, None);
        let matching = self.licences.iter().filter(|l| {
            l.source.at >= ban.source.at && l.source.at <= at && (l.scope.is_none() || l.scope == ban.scope)
        });
        for l in matching {
            let relief = model.license_granted.relief * l.strength;
            let better = match best.1 {
                None => true,
                Some(b) => relief > best.0 || (relief == best.0 && id_of(&l.source) < id_of(&b)),
            };
            if better {
                best = (relief, Some(l.source));
            }
        }
        best
    }
}
