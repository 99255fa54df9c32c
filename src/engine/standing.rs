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

//!
//! The book holds one record per event and vendor, whatever the number of
//! products the event names: the products are a list of interned ids in
//! key order, shared by the event's vendors. Queries walk the products in
//! key order by merging those lists (see [`ByProduct`]), holding one cursor
//! per record and never one entry per product, so a ban naming hundreds of
//! products costs its list, not hundreds of records, in memory and in
//! every query.

use super::products::{ProductId, Products};
use super::texts::{TextRef, Texts};
use super::Source;
use crate::engine::model::{BanModel, ScoringModel};
use crate::event::{BanKind, Timestamp};
use std::cmp::{Ordering, Reverse};
use std::collections::binary_heap::PeekMut;
use std::collections::BinaryHeap;
use std::ops::ControlFlow;
use std::sync::Arc;

/// One ban, lift or licence for one vendor: one per event.
#[derive(Debug, Clone)]
pub(crate) struct Standing {
    pub source: Source,
    /// The products it names, in key order without repeats, shared by the
    /// event's vendors; `None`: the vendor as a whole.
    pub products: Option<Arc<[ProductId]>>,
    /// Severity times confidence.
    pub strength: f64,
    /// The event's `source_url`, for notifications.
    pub url: Option<TextRef>,
}

impl Standing {
    /// Whether it names the product.
    pub fn names(&self, p: ProductId, products: &Products) -> bool {
        self.products.as_ref().is_some_and(|l| l.binary_search_by(|q| products.cmp(*q, p)).is_ok())
    }

    /// Whether it names a product that `other` names too (both lists are in
    /// key order: one merge).
    pub fn shares_a_product(&self, other: &Standing, products: &Products) -> bool {
        let (Some(a), Some(b)) = (&self.products, &other.products) else { return false };
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            match products.cmp(a[i], b[j]) {
                Ordering::Less => i += 1,
                Ordering::Greater => j += 1,
                Ordering::Equal => return true,
            }
        }
        false
    }
}

/// A vendor's standing records.
#[derive(Debug, Default)]
pub(crate) struct StandingBook {
    bans: [Vec<Standing>; 2],
    lifts: [Vec<Standing>; 2],
    licences: Vec<Standing>,
}

/// The bans of one kind in force for one vendor, in sum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct InForce {
    /// Scopes (the vendor as a whole, or one product) with a ban in force.
    pub count: usize,
    /// Their combined pressure, at most `weight`. Computed once from the
    /// unscaled amounts so that it rises monotonically with any ban's
    /// severity (rescaled parts could lose a rounding unit).
    pub total: f64,
    /// What each governing ban's amount is multiplied by when shown, so
    /// that the shown amounts add up to `total` (1 when nothing is in force).
    pub factor: f64,
}

/// [`InForce`], summed one governing ban at a time, in scope order.
pub(crate) struct InForceSum {
    weight: f64,
    count: usize,
    open: f64,
    raw: f64,
}

impl InForceSum {
    pub fn new(weight: f64) -> Self {
        Self { weight, count: 0, open: 1.0, raw: -0.0 }
    }

    pub fn add(&mut self, g: &Governing<'_>) {
        // Scopes combine like independent chances of being blocked:
        // weight * (1 - prod(1 - share_i)), so every further ban adds, with
        // diminishing returns, and the total never exceeds a full ban.
        self.count += 1;
        self.open *= 1.0 - (g.amount / self.weight).clamp(0.0, 1.0);
        self.raw += g.amount;
    }

    pub fn finish(&self) -> InForce {
        let total = if self.weight > 0.0 { self.weight * (1.0 - self.open) } else { 0.0 };
        // Shown contributions are scaled to add up to the combined total.
        let factor = if self.raw > 0.0 { total / self.raw } else { 1.0 };
        InForce { count: self.count, total, factor }
    }
}

/// The ban that governs one scope, and what it adds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Governing<'a> {
    pub ban: &'a Standing,
    /// `None`: the vendor as a whole.
    pub scope: Option<ProductId>,
    pub relief: f64,
    pub licence: Option<Source>,
    /// Pressure after relief, before the cap (shown: times [`InForce::factor`]).
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

    /// Where every record came from (one per event).
    pub fn sources(&self) -> impl Iterator<Item = &Source> {
        self.bans.iter().chain(&self.lifts).flatten().chain(&self.licences).map(|s| &s.source)
    }

    /// The bans of this kind in force at `at`, in sum: one pass over
    /// [`StandingBook::governing`].
    pub fn in_force(
        &self,
        kind: BanKind,
        at: Timestamp,
        model: &ScoringModel,
        products: &Products,
        texts: &Texts,
    ) -> InForce {
        let mut sum = InForceSum::new(model.ban(kind).weight);
        self.governing(kind, at, model, products, texts, |g| {
            sum.add(&g);
            ControlFlow::Continue(())
        });
        sum.finish()
    }

    /// Visits the governing ban of every scope in force at `at`, in scope
    /// order (the vendor as a whole, then products by key), until `visit`
    /// breaks. Within a scope the strongest ban in force governs (ties go
    /// to the smaller event id).
    pub fn governing<'a>(
        &'a self,
        kind: BanKind,
        at: Timestamp,
        model: &ScoringModel,
        products: &'a Products,
        texts: &Texts,
        mut visit: impl FnMut(Governing<'a>) -> ControlFlow<()>,
    ) {
        let relief_per_strength = model.license_granted.relief;
        let known = |s: &&Standing| s.source.at <= at;
        let wide_lift =
            self.lifts[kind as usize].iter().filter(known).filter(|l| l.products.is_none()).map(|l| l.source.at).max();
        let bans = self.bans[kind as usize].iter().filter(known).filter(|b| wide_lift.is_none_or(|l| l < b.source.at));
        let licences: Vec<&Standing> = match kind {
            BanKind::Export => self.licences.iter().filter(known).collect(),
            BanKind::Purchase => Vec::new(),
        };
        let judge = Judge {
            params: model.ban(kind),
            relief_per_strength,
            texts,
            wide_licences: BestFrom::new(
                licences.iter().copied().filter(|l| l.products.is_none()).collect(),
                relief_per_strength,
                texts,
            ),
        };

        // The vendor as a whole: only licences of the vendor as a whole relieve it.
        if let Some(g) = judge.strongest(bans.clone().filter(|b| b.products.is_none()), None, None) {
            if visit(g).is_break() {
                return;
            }
        }

        // Each product, in key order.
        let product_bans = bans.filter(|b| b.products.is_some()).collect();
        let product_lifts = self.lifts[kind as usize].iter().filter(known).filter(|l| l.products.is_some()).collect();
        let product_licences = licences.into_iter().filter(|l| l.products.is_some()).collect();
        let mut walk = ByProduct::new(products, [product_bans, product_lifts, product_licences]);
        let mut group = Default::default();
        while let Some(p) = walk.next(&mut group) {
            let [bans, lifts, licences] = &group;
            if bans.is_empty() {
                continue;
            }
            let lifted = lifts.iter().map(|l| l.source.at).max();
            let own = BestFrom::new(licences.clone(), relief_per_strength, texts);
            let standing = bans.iter().copied().filter(|b| lifted.is_none_or(|l| l < b.source.at));
            if let Some(g) = judge.strongest(standing, Some(p), Some(&own)) {
                if visit(g).is_break() {
                    return;
                }
            }
        }
    }

    /// The bans (`lifts` false) or lifts (`lifts` true) of this kind that
    /// occurred within `from..=to`, one record per event.
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
    /// (a lift matching nothing is recorded but is not news), and the scope
    /// it ended it in (`None`: it lifted the vendor as a whole). Ties in
    /// time go to the smaller event id; one lift event with several
    /// products yields the smallest product that ended a ban, so the answer
    /// does not depend on arrival order.
    pub fn last_effective_lift<'a>(
        &'a self,
        kind: BanKind,
        at: Timestamp,
        products: &'a Products,
        texts: &Texts,
    ) -> Option<(&'a Standing, Option<ProductId>)> {
        // A lift ended a ban if it is the first lift (by time, then id) at or
        // after the ban that matches it: a lift of the vendor as a whole, or
        // of the ban's product.
        let order = |s: &Standing| (s.source.at, texts.get(s.source.id));
        let by_order = |mut v: Vec<&'a Standing>| {
            v.sort_by(|a, b| order(a).cmp(&order(b)));
            v
        };
        let first_from =
            |list: &[&'a Standing], t: Timestamp| list.get(list.partition_point(|l| l.source.at < t)).copied();
        let known = |s: &&Standing| s.source.at <= at;
        let wide_lifts =
            by_order(self.lifts[kind as usize].iter().filter(known).filter(|l| l.products.is_none()).collect());
        // The later lift; at the same time the smaller id, then the smaller scope.
        let later = |a: (&Standing, Option<ProductId>), b: (&Standing, Option<ProductId>)| {
            order(a.0)
                .0
                .cmp(&order(b.0).0)
                .then_with(|| order(b.0).1.cmp(order(a.0).1))
                .then_with(|| products.scope_cmp(b.1, a.1))
        };
        let mut latest: Option<(&'a Standing, Option<ProductId>)> = None;
        let mut offer = |e: (&'a Standing, Option<ProductId>)| {
            if latest.is_none_or(|l| later(e, l) == Ordering::Greater) {
                latest = Some(e);
            }
        };
        let bans = self.bans[kind as usize].iter().filter(known);
        for b in bans.clone().filter(|b| b.products.is_none()) {
            if let Some(w) = first_from(&wide_lifts, b.source.at) {
                offer((w, None));
            }
        }
        let product_bans = bans.filter(|b| b.products.is_some()).collect();
        let product_lifts = self.lifts[kind as usize].iter().filter(known).filter(|l| l.products.is_some()).collect();
        let mut walk = ByProduct::new(products, [product_bans, product_lifts]);
        let mut group = Default::default();
        while let Some(p) = walk.next(&mut group) {
            let [bans, lifts] = &group;
            if bans.is_empty() {
                continue;
            }
            let own = by_order(lifts.clone());
            for b in bans {
                let ender = match (first_from(&wide_lifts, b.source.at), first_from(&own, b.source.at)) {
                    (Some(w), Some(o)) => Some(if order(o) < order(w) { (o, Some(p)) } else { (w, None) }),
                    (Some(w), None) => Some((w, None)),
                    (None, o) => o.map(|o| (o, Some(p))),
                };
                if let Some(e) = ender {
                    offer(e);
                }
            }
        }
        latest
    }
}

/// Walks the products that records name (each record's list in key
/// order), in key order: for each product, the records of each stream that
/// name it. A heap holds one cursor per record.
/// Records naming one product (most do) are not merged but sorted, by
/// rank, once: a heap step costs more than a sort's.
struct ByProduct<'a, const N: usize> {
    streams: [Vec<&'a Standing>; N],
    heap: BinaryHeap<Reverse<Cursor>>,
    /// Records naming one product, as (rank, stream, record), sorted; and
    /// how many were taken.
    single: Vec<(u32, u32, u32)>,
    taken: usize,
    products: &'a Products,
}

/// A record's position in its list, with the product there and its rank
/// in key order (cursors compare by rank first).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Cursor {
    rank: u32,
    product: ProductId,
    stream: u32,
    record: u32,
    pos: u32,
}

impl<'a, const N: usize> ByProduct<'a, N> {
    fn new(products: &'a Products, streams: [Vec<&'a Standing>; N]) -> Self {
        let (mut heap, mut single) = (BinaryHeap::new(), Vec::new());
        for (stream, records) in streams.iter().enumerate() {
            for (record, r) in records.iter().enumerate() {
                let (stream, record) = (stream as u32, record as u32);
                match r.products.as_deref().unwrap_or_default() {
                    [] => {}
                    [only] => single.push((products.rank(*only), stream, record)),
                    [first, ..] => heap.push(Reverse(Cursor {
                        rank: products.rank(*first),
                        product: *first,
                        stream,
                        record,
                        pos: 0,
                    })),
                }
            }
        }
        single.sort_unstable();
        Self { streams, heap, single, taken: 0, products }
    }

    /// The next product, with the records that name it per stream in
    /// `group` (cleared first).
    fn next(&mut self, group: &mut [Vec<&'a Standing>; N]) -> Option<ProductId> {
        group.iter_mut().for_each(Vec::clear);
        let next_single = self.single.get(self.taken).map(|s| s.0);
        let rank = match (next_single, self.heap.peek().map(|c| c.0.rank)) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        let mut product = None;
        while let Some(&(r, stream, record)) = self.single.get(self.taken) {
            if r != rank {
                break;
            }
            let r = self.streams[stream as usize][record as usize];
            product = r.products.as_deref().and_then(|l| l.first().copied());
            group[stream as usize].push(r);
            self.taken += 1;
        }
        while let Some(mut top) = self.heap.peek_mut() {
            if top.0.rank != rank {
                break;
            }
            product = Some(top.0.product);
            let c = &mut top.0;
            let r = self.streams[c.stream as usize][c.record as usize];
            let list = r.products.as_deref().unwrap_or_default();
            group[c.stream as usize].push(r);
            c.pos += 1;
            match list.get(c.pos as usize) {
                Some(&next) => (c.product, c.rank) = (next, self.products.rank(next)),
                None => {
                    PeekMut::pop(top);
                }
            }
        }
        product
    }
}

/// What decides which ban governs a scope, and what it weighs.
struct Judge<'a, 't> {
    params: &'t BanModel,
    relief_per_strength: f64,
    texts: &'t Texts,
    /// Licences of the vendor as a whole, which relieve every scope.
    wide_licences: BestFrom<'a>,
}

impl<'a, 't> Judge<'a, 't> {
    /// The strongest of `bans` in `scope` (ties go to the smaller event
    /// id), each relieved by the best licence granted since it: of the
    /// vendor as a whole, or of the scope itself (`own`).
    fn strongest(
        &self,
        bans: impl Iterator<Item = &'a Standing>,
        scope: Option<ProductId>,
        own: Option<&BestFrom<'a>>,
    ) -> Option<Governing<'a>> {
        let mut best: Option<Governing<'a>> = None;
        for ban in bans {
            let wide = self.wide_licences.best_from(ban.source.at);
            let licence = match (wide, own.and_then(|o| o.best_from(ban.source.at))) {
                (Some(w), Some(o)) => Some(if better(self.relief_per_strength, o, w, self.texts) { o } else { w }),
                (w, o) => w.or(o),
            };
            let c = self.candidate(ban, scope, licence);
            let stronger = |g: &Governing<'a>| {
                c.amount.total_cmp(&g.amount).then_with(|| self.id(g.ban).cmp(self.id(c.ban))) == Ordering::Greater
            };
            if best.as_ref().is_none_or(stronger) {
                best = Some(c);
            }
        }
        best
    }

    fn candidate(&self, ban: &'a Standing, scope: Option<ProductId>, licence: Option<&Standing>) -> Governing<'a> {
        let (relief, licence) =
            licence.map_or((0.0, None), |l| (self.relief_per_strength * l.strength, Some(l.source)));
        let share = if scope.is_some() { self.params.product_share } else { 1.0 };
        Governing { ban, scope, relief, licence, amount: self.params.weight * share * ban.strength * (1.0 - relief) }
    }

    fn id(&self, s: &Standing) -> &'t str {
        self.texts.get(s.source.id)
    }
}

/// Licences arranged to find, in logarithmic time, the one that relieves
/// most among those granted at or after some time: sorted by time, with
/// the best licence from each position on.
struct BestFrom<'a> {
    by_time: Vec<&'a Standing>,
    best: Vec<&'a Standing>,
}

impl<'a> BestFrom<'a> {
    fn new(mut by_time: Vec<&'a Standing>, relief_per_strength: f64, texts: &Texts) -> Self {
        by_time.sort_by_key(|l| l.source.at);
        let mut best = by_time.clone();
        for i in (0..best.len().saturating_sub(1)).rev() {
            if !better(relief_per_strength, best[i], best[i + 1], texts) {
                best[i] = best[i + 1];
            }
        }
        Self { by_time, best }
    }

    /// The licence that relieves most among those granted at or after `t`
    /// (ties go to the smaller event id).
    fn best_from(&self, t: Timestamp) -> Option<&'a Standing> {
        self.best.get(self.by_time.partition_point(|l| l.source.at < t)).copied()
    }
}

/// Whether licence `a` relieves more than `b` (or as much, with a smaller id).
fn better(relief_per_strength: f64, a: &Standing, b: &Standing, texts: &Texts) -> bool {
    let (ra, rb) = (relief_per_strength * a.strength, relief_per_strength * b.strength);
    ra > rb || (ra == rb && texts.get(a.source.id) < texts.get(b.source.id))
}

#[cfg(test)]
mod tests;
