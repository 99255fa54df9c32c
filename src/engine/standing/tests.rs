//! The book against the representation it replaced: one record per scope
//! (an event naming n products was n records), with the queries as they
//! were written for it (kept here, verbatim but for names, as the
//! reference). On generated books, every query must answer exactly the
//! same, bit for bit.

use super::*;
use crate::event::EventType;
use proptest::prelude::*;
use std::collections::hash_map::Entry;
use std::collections::HashMap;

const DAY: i64 = 86_400_000_000_000;

/// Product names: spellings that match each other, and names whose order
/// in lower case differs from their order as written.
const NAMES: [&str; 11] = ["H20", "h20", "B30A", "b30a", "MI308", "Zeta", "éclair", "ΟΔΟΣ", "οδοσ", "\u{212A}9", "k9"];

/// One record for one scope, as the book held them before.
#[derive(Debug, Clone, Copy)]
struct Old {
    source: Source,
    scope: Option<ProductId>,
    strength: f64,
}

#[derive(Default)]
struct OldBook {
    bans: [Vec<Old>; 2],
    lifts: [Vec<Old>; 2],
    licences: Vec<Old>,
}

struct OldGoverning {
    ban: Old,
    relief: f64,
    licence: Option<Source>,
    amount: f64,
}

impl OldBook {
    /// The former `StandingBook::in_force`: governing bans (scaled amounts)
    /// ordered by scope, and their total.
    fn in_force(
        &self,
        kind: BanKind,
        at: Timestamp,
        model: &ScoringModel,
        scope_order: impl Fn(Option<ProductId>) -> String,
        texts: &Texts,
    ) -> (Vec<OldGoverning>, f64) {
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
        let mut licences: Option<OldLicenceIndex<'_>> = None;
        let mut governing: Vec<OldGoverning> = Vec::new();
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
                BanKind::Export => licences
                    .get_or_insert_with(|| OldLicenceIndex::new(&self.licences, at, model, texts))
                    .relief(b, texts),
                BanKind::Purchase => (0.0, None),
            };
            let share = if b.scope.is_some() { params.product_share } else { 1.0 };
            let amount = params.weight * share * b.strength * (1.0 - relief);
            let candidate = OldGoverning { ban: *b, relief, licence, amount };
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
        governing.sort_by_cached_key(|g| scope_order(g.ban.scope));
        let open: f64 = governing.iter().map(|g| 1.0 - (g.amount / params.weight).clamp(0.0, 1.0)).product();
        let capped = if params.weight > 0.0 { params.weight * (1.0 - open) } else { 0.0 };
        let raw: f64 = governing.iter().map(|g| g.amount).sum();
        if raw > 0.0 {
            let factor = capped / raw;
            governing.iter_mut().for_each(|g| g.amount *= factor);
        }
        (governing, capped)
    }

    /// The former `StandingBook::last_effective_lift`.
    fn last_effective_lift(
        &self,
        kind: BanKind,
        at: Timestamp,
        texts: &Texts,
        scope_order: impl Fn(Option<ProductId>) -> String,
    ) -> Option<Old> {
        let order = |s: &Old| (s.source.at, texts.get(s.source.id));
        let lifts = by_scope(&self.lifts[kind as usize], at, |a, b| order(a).cmp(&order(b)));
        let first_from = |scope: Option<ProductId>, t: Timestamp| {
            let list = lifts.get(&scope)?;
            list.get(list.partition_point(|l| l.source.at < t)).copied()
        };
        let later = |a: &Old, b: &Old| {
            order(a)
                .0
                .cmp(&order(b).0)
                .then_with(|| order(b).1.cmp(order(a).1))
                .then_with(|| scope_order(b.scope).cmp(&scope_order(a.scope)))
        };
        let mut latest: Option<&Old> = None;
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

fn by_scope(
    records: &[Old],
    at: Timestamp,
    cmp: impl Fn(&Old, &Old) -> Ordering,
) -> HashMap<Option<ProductId>, Vec<&Old>> {
    let mut groups: HashMap<Option<ProductId>, Vec<&Old>> = HashMap::new();
    for r in records.iter().filter(|r| r.source.at <= at) {
        groups.entry(r.scope).or_default().push(r);
    }
    groups.values_mut().for_each(|g| g.sort_by(|a, b| cmp(a, b)));
    groups
}

struct OldLicenceIndex<'a> {
    relief_per_strength: f64,
    scopes: HashMap<Option<ProductId>, (Vec<&'a Old>, Vec<&'a Old>)>,
}

impl<'a> OldLicenceIndex<'a> {
    fn new(licences: &'a [Old], at: Timestamp, model: &ScoringModel, texts: &Texts) -> Self {
        let relief_per_strength = model.license_granted.relief;
        let groups = by_scope(licences, at, |a, b| a.source.at.cmp(&b.source.at));
        let scopes = groups
            .into_iter()
            .map(|(scope, by_time)| {
                let mut best: Vec<&Old> = by_time.clone();
                for i in (0..best.len().saturating_sub(1)).rev() {
                    if !old_better(relief_per_strength, best[i], best[i + 1], texts) {
                        best[i] = best[i + 1];
                    }
                }
                (scope, (by_time, best))
            })
            .collect();
        Self { relief_per_strength, scopes }
    }

    fn relief(&self, ban: &Old, texts: &Texts) -> (f64, Option<Source>) {
        let best_from = |scope: Option<ProductId>| {
            let (by_time, best) = self.scopes.get(&scope)?;
            best.get(by_time.partition_point(|l| l.source.at < ban.source.at)).copied()
        };
        let wide = best_from(None);
        let own = ban.scope.and_then(|_| best_from(ban.scope));
        let chosen = match (wide, own) {
            (Some(w), Some(o)) => Some(if old_better(self.relief_per_strength, o, w, texts) { o } else { w }),
            (w, o) => w.or(o),
        };
        chosen.map_or((0.0, None), |l| (self.relief_per_strength * l.strength, Some(l.source)))
    }
}

fn old_better(relief_per_strength: f64, a: &Old, b: &Old, texts: &Texts) -> bool {
    let (ra, rb) = (relief_per_strength * a.strength, relief_per_strength * b.strength);
    ra > rb || (ra == rb && texts.get(a.source.id) < texts.get(b.source.id))
}

/// (role 0..5, products named (indices into `NAMES`; none: vendor-wide),
/// day, strength, id)
type Record = (u8, Vec<usize>, i64, f64, u16);

fn arb_records() -> impl Strategy<Value = Vec<Record>> {
    prop::collection::vec(
        (
            0u8..5,
            prop::collection::vec(0..NAMES.len(), 0..4),
            0i64..30,
            prop::sample::select(vec![0.2, 0.5, 0.9, 1.0]),
            0u16..400,
        ),
        0..40,
    )
}

/// The same records in both books: one per event in the new, one per
/// scope in the old.
fn books_of(records: &[Record], products: &mut Products, texts: &mut Texts) -> (StandingBook, OldBook) {
    let (mut book, mut old) = (StandingBook::default(), OldBook::default());
    // Event ids are unique in an engine (a repeated id is never applied):
    // the random part orders them, the position keeps them apart.
    for (i, (role, names, day, strength, id)) in records.iter().enumerate() {
        let kind = [
            EventType::ExportBan,
            EventType::PurchaseBan,
            EventType::ExportBanLifted,
            EventType::PurchaseBanLifted,
            EventType::LicenseGranted,
        ][*role as usize];
        let source =
            Source { id: texts.push(&format!("e{id}-{i}")), title: None, at: Timestamp::from_nanos(day * DAY), kind };
        // As the engine builds them: interned, in key order, without repeats.
        let mut ids: Vec<ProductId> = names.iter().map(|&n| products.intern(NAMES[n])).collect();
        ids.sort_unstable_by(|a, b| products.cmp(*a, *b));
        ids.dedup();
        let list: Option<Arc<[ProductId]>> = (!ids.is_empty()).then(|| ids.clone().into());
        let s = Standing { source, products: list, strength: *strength, url: None };
        let scopes: Vec<Option<ProductId>> =
            if ids.is_empty() { vec![None] } else { ids.into_iter().map(Some).collect() };
        for scope in scopes {
            let o = Old { source, scope, strength: *strength };
            match role {
                0 => old.bans[0].push(o),
                1 => old.bans[1].push(o),
                2 => old.lifts[0].push(o),
                3 => old.lifts[1].push(o),
                _ => old.licences.push(o),
            }
        }
        match role {
            0 => book.add_ban(BanKind::Export, s),
            1 => book.add_ban(BanKind::Purchase, s),
            2 => book.add_lift(BanKind::Export, s),
            3 => book.add_lift(BanKind::Purchase, s),
            _ => book.add_licence(s),
        }
    }
    (book, old)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn one_record_per_event_answers_exactly_like_one_record_per_scope(
        records in arb_records(),
        at_day in -1i64..32,
        product_share in prop::sample::select(vec![0.35, 0.6, 1.0]),
    ) {
        let (mut products, mut texts) = (Products::default(), Texts::default());
        let (book, old) = books_of(&records, &mut products, &mut texts);
        let mut model = ScoringModel::default();
        model.export_ban.product_share = product_share;
        model.purchase_ban.product_share = product_share;
        let at = Timestamp::from_nanos(at_day * DAY);
        // As the engine ordered scopes: the product's name in lower case.
        let scope_order = |s: Option<ProductId>| s.map_or_else(String::new, |p| products.name(p).to_lowercase());
        for kind in BanKind::ALL {
            let (expected, total) = old.in_force(kind, at, &model, scope_order, &texts);
            let sum = book.in_force(kind, at, &model, &products, &texts);
            prop_assert_eq!(sum.total.to_bits(), total.to_bits(), "{:?} total", kind);
            prop_assert_eq!(sum.count, expected.len());
            let mut got = Vec::new();
            book.governing(kind, at, &model, &products, &texts, |g| {
                got.push((g.scope, g.ban.source.id, g.relief.to_bits(), g.licence.map(|l| l.id), (g.amount * sum.factor).to_bits()));
                ControlFlow::Continue(())
            });
            let want: Vec<_> = expected
                .iter()
                .map(|g| (g.ban.scope, g.ban.source.id, g.relief.to_bits(), g.licence.map(|l| l.id), g.amount.to_bits()))
                .collect();
            prop_assert_eq!(got, want, "{:?} governing", kind);

            let new = book.last_effective_lift(kind, at, &products, &texts).map(|(l, scope)| (l.source.id, scope));
            let was = old.last_effective_lift(kind, at, &texts, scope_order).map(|l| (l.source.id, l.scope));
            prop_assert_eq!(new, was, "{:?} last lift", kind);
        }
    }
}

#[test]
fn a_ban_naming_many_products_is_one_record_and_one_scope_each() {
    let (mut products, mut texts) = (Products::default(), Texts::default());
    let names: Vec<Vec<usize>> = vec![(0..NAMES.len()).collect()];
    let records: Vec<Record> = names.into_iter().map(|n| (0, n, 1, 1.0, 7)).collect();
    let (book, _) = books_of(&records, &mut products, &mut texts);
    assert_eq!(book.bans[0].len(), 1);
    let sum =
        book.in_force(BanKind::Export, Timestamp::from_nanos(2 * DAY), &ScoringModel::default(), &products, &texts);
    // "H20"/"h20", "B30A"/"b30a" and "\u{212A}9"/"k9" (a Kelvin sign) are
    // one product each.
    assert_eq!(sum.count, 8);
}
