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
use std::collections::hash_map::Entry;
use std::collections::HashMap;

/// One ban, lift or licence for one vendor and one scope.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Standing {
    pub source: Source,
    /// `None`: the vendor as a whole.
    pub scope: Option<ProductId>,
    /// Severity times confidence.
    pub strength: f64,
    /// The event's `source_url`, for notifications.
    pub url: Option<super::texts::TextRef>,
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

    /// Where every record came from (a record per scope: an event with two
    /// products appears twice).
    pub fn sources(&self) -> impl Iterator<Item = &Source> {
        self.bans.iter().chain(&self.lifts).flatten().chain(&self.licences).map(|s| &s.source)
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

        // Built when the first ban in force needs it: most bans are lifted.
        let mut licences: Option<LicenceIndex<'_>> = None;
        let mut governing: Vec<Governing> = Vec::new();
        let mut slot: HashMap<Option<ProductId>, usize> = HashMap::new();
        for b in self.bans[kind as usize].iter().filter(|b| b.source.at <= at) {
            let last_lift = match b.scope {
                None => wide_lift,
                Some(p) => wide_lift.max(product_lift.get(&p).copied()),
            };
            if last_lift.is_some_and(|l| l >= b.source.at) {
                continue;
            }
            let (relief, licence) = match kind {
                BanKind::Export => {
                    licences.get_or_insert_with(|| LicenceIndex::new(&self.licences, at, model, texts)).relief(b, texts)
                }
                BanKind::Purchase => (0.0, None),
            };
            let share = if b.scope.is_some() { params.product_share } else { 1.0 };
            let amount = params.weight * share * b.strength * (1.0 - relief);
            let candidate = Governing { ban: *b, relief, licence, amount };
            match slot.entry(b.scope) {
                Entry::Vacant(e) => {
                    e.insert(governing.len());
                    governing.push(candidate);
                }
                Entry::Occupied(e) => {
                    let g = &mut governing[*e.get()];
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

    /// The bans (`lifts` false) or lifts (`lifts` true) of this kind that
    /// occurred within `from..=to`, one record per scope.
    pub fn occurred(
        &self,
        kind: BanKind,
        lifts: bool,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Iterator<Item = &Standing> {
        let records = if lifts { &self.lifts } else { &self.bans };
        records[kind as usize].iter().filter(move |s| (from..=to).contains(&s.source.at))
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
        // A lift ended a ban if it is the first lift (by time, then id) at or
        // after the ban that matches it: a lift of the vendor as a whole, or
        // of the ban's product.
        let order = |s: &Standing| (s.source.at, texts.get(s.source.id));
        let lifts = by_scope(&self.lifts[kind as usize], at, |a, b| order(a).cmp(&order(b)));
        let first_from = |scope: Option<ProductId>, t: Timestamp| {
            let list = lifts.get(&scope)?;
            list.get(list.partition_point(|l| l.source.at < t)).copied()
        };
        // The later lift; at the same time the smaller id, then the smaller scope.
        let later = |a: &Standing, b: &Standing| {
            order(a)
                .0
                .cmp(&order(b).0)
                .then_with(|| order(b).1.cmp(order(a).1))
                .then_with(|| scope_order(b.scope).cmp(&scope_order(a.scope)))
        };
        let mut latest: Option<&Standing> = None;
        for b in self.bans[kind as usize].iter().filter(|b| b.source.at <= at) {
            let wide = first_from(None, b.source.at);
            let own = b.scope.and_then(|_| first_from(b.scope, b.source.at));
            let ender = match (wide, own) {
                (Some(w), Some(o)) => Some(if order(o) < order(w) { o } else { w }),
                (w, o) => w.or(o),
            };
            if let Some(e) = ender {
                if latest.is_none_or(|l| later(e, l) == Ordering::Greater) {
                    latest = Some(e);
                }
            }
        }
        latest.copied()
    }
}

/// Records at or before `at`, grouped by scope, each group sorted by `cmp`.
fn by_scope(
    records: &[Standing],
    at: Timestamp,
    cmp: impl Fn(&Standing, &Standing) -> Ordering,
) -> HashMap<Option<ProductId>, Vec<&Standing>> {
    let mut groups: HashMap<Option<ProductId>, Vec<&Standing>> = HashMap::new();
    for r in records.iter().filter(|r| r.source.at <= at) {
        groups.entry(r.scope).or_default().push(r);
    }
    groups.values_mut().for_each(|g| g.sort_by(|a, b| cmp(a, b)));
    groups
}

/// The licences granted at or before some time, arranged to find the best
/// one for a ban in logarithmic time: per scope, sorted by time, with the
/// best licence from each position on.
struct LicenceIndex<'a> {
    relief_per_strength: f64,
    /// Per scope: licences by time, and the best of each suffix.
    scopes: HashMap<Option<ProductId>, (Vec<&'a Standing>, Vec<&'a Standing>)>,
}

impl<'a> LicenceIndex<'a> {
    fn new(licences: &'a [Standing], at: Timestamp, model: &ScoringModel, texts: &Texts) -> Self {
        let relief_per_strength = model.license_granted.relief;
        let groups = by_scope(licences, at, |a, b| a.source.at.cmp(&b.source.at));
        let scopes = groups
            .into_iter()
            .map(|(scope, by_time)| {
                let mut best: Vec<&Standing> = by_time.clone();
                for i in (0..best.len().saturating_sub(1)).rev() {
                    if !better(relief_per_strength, best[i], best[i + 1], texts) {
                        best[i] = best[i + 1];
                    }
                }
                (scope, (by_time, best))
            })
            .collect();
        Self { relief_per_strength, scopes }
    }

    /// The largest relief a matching licence granted at or after the ban
    /// gives it (a licence of the vendor as a whole, or of the ban's
    /// product); ties go to the smaller event id.
    fn relief(&self, ban: &Standing, texts: &Texts) -> (f64, Option<Source>) {
        let best_from = |scope: Option<ProductId>| {
            let (by_time, best) = self.scopes.get(&scope)?;
            best.get(by_time.partition_point(|l| l.source.at < ban.source.at)).copied()
        };
        let wide = best_from(None);
        let own = ban.scope.and_then(|_| best_from(ban.scope));
        let chosen = match (wide, own) {
            (Some(w), Some(o)) => Some(if better(self.relief_per_strength, o, w, texts) { o } else { w }),
            (w, o) => w.or(o),
        };
        chosen.map_or((0.0, None), |l| (self.relief_per_strength * l.strength, Some(l.source)))
    }
}

/// Whether licence `a` relieves more than `b` (or as much, with a smaller id).
fn better(relief_per_strength: f64, a: &Standing, b: &Standing, texts: &Texts) -> bool {
    let (ra, rb) = (relief_per_strength * a.strength, relief_per_strength * b.strength);
    ra > rb || (ra == rb && texts.get(a.source.id) < texts.get(b.source.id))
}

#[cfg(test)]
mod tests {
    //! The indexed lookups against the direct definitions (the quadratic
    //! scans this module used before), on generated books.

    use super::*;
    use crate::event::EventType;
    use proptest::prelude::*;

    const DAY: i64 = 86_400_000_000_000;

    /// The best licence for a ban, by scanning every licence.
    fn relief_by_scan(
        book: &StandingBook,
        ban: &Standing,
        at: Timestamp,
        model: &ScoringModel,
        texts: &Texts,
    ) -> (f64, Option<Source>) {
        let id_of = |s: &Source| texts.get(s.id);
        let mut best: (f64, Option<Source>) = (0.0, None);
        let matching = book.licences.iter().filter(|l| {
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

    /// The last lift that ended a ban, by checking every lift against every ban.
    fn last_lift_by_scan(book: &StandingBook, kind: BanKind, at: Timestamp, texts: &Texts) -> Option<Standing> {
        let lifts = &book.lifts[kind as usize];
        let matches = |lift: &Standing, ban: &Standing| lift.scope.is_none() || lift.scope == ban.scope;
        let before =
            |a: &Standing, b: &Standing| (a.source.at, texts.get(a.source.id)) < (b.source.at, texts.get(b.source.id));
        let ended_a_ban = |l: &Standing| {
            book.bans[kind as usize].iter().any(|b| {
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
                (a.source.at, texts.get(b.source.id), scope_key(b.scope)).cmp(&(
                    b.source.at,
                    texts.get(a.source.id),
                    scope_key(a.scope),
                ))
            })
            .copied()
    }

    fn scope_key(scope: Option<ProductId>) -> String {
        scope.map_or_else(String::new, |p| format!("p{}", p.0))
    }

    /// (role 0..5, scope: 0 = vendor-wide or product 1..3, day, strength, id)
    fn arb_records() -> impl Strategy<Value = Vec<(u8, u8, i64, f64, u16)>> {
        prop::collection::vec(
            (0u8..5, 0u8..4, 0i64..30, prop::sample::select(vec![0.2, 0.5, 0.9, 1.0]), 0u16..400),
            0..40,
        )
    }

    fn book_of(records: &[(u8, u8, i64, f64, u16)], texts: &mut Texts) -> StandingBook {
        let mut book = StandingBook::default();
        // Event ids are unique in an engine (a repeated id is never applied):
        // the random part orders them, the position keeps them apart.
        for (i, &(role, scope, day, strength, id)) in records.iter().enumerate() {
            let kind = [
                EventType::ExportBan,
                EventType::PurchaseBan,
                EventType::ExportBanLifted,
                EventType::PurchaseBanLifted,
                EventType::LicenseGranted,
            ][role as usize];
            let source = Source {
                id: texts.push(&format!("e{id}-{i}")),
                title: None,
                at: Timestamp::from_nanos(day * DAY),
                kind,
            };
            let s = Standing { source, scope: (scope > 0).then_some(ProductId(u32::from(scope))), strength, url: None };
            match role {
                0 => book.add_ban(BanKind::Export, s),
                1 => book.add_ban(BanKind::Purchase, s),
                2 => book.add_lift(BanKind::Export, s),
                3 => book.add_lift(BanKind::Purchase, s),
                _ => book.add_licence(s),
            }
        }
        book
    }

    proptest! {
        #[test]
        fn indexed_lookups_agree_with_scanning_everything(records in arb_records(), at_day in 0i64..32) {
            let mut texts = Texts::default();
            let book = book_of(&records, &mut texts);
            let model = ScoringModel::default();
            let at = Timestamp::from_nanos(at_day * DAY);
            let same = |a: Option<Source>, b: Option<Source>| a.map(|s| s.id) == b.map(|s| s.id);
            let index = LicenceIndex::new(&book.licences, at, &model, &texts);
            for ban in book.bans[BanKind::Export as usize].iter().filter(|b| b.source.at <= at) {
                let (fast, fast_by) = index.relief(ban, &texts);
                let (slow, slow_by) = relief_by_scan(&book, ban, at, &model, &texts);
                prop_assert!(fast == slow && same(fast_by, slow_by), "relief {} by {:?}, scan {} by {:?}", fast, fast_by, slow, slow_by);
            }
            for kind in BanKind::ALL {
                let fast = book.last_effective_lift(kind, at, &texts, scope_key);
                let slow = last_lift_by_scan(&book, kind, at, &texts);
                prop_assert!(
                    fast.map(|l| (l.source.id, l.scope)) == slow.map(|l| (l.source.id, l.scope)),
                    "{:?}: {:?} against {:?}", kind, fast.map(|l| texts.get(l.source.id).to_owned()), slow.map(|l| texts.get(l.source.id).to_owned())
                );
            }
        }
    }
}
