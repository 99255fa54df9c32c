//! The scoring engine: a pure core with no I/O.
//!
//! [`Engine::apply`] records an event once (by id); [`Engine::score`] and
//! [`Engine::explain`] answer as of any time T, counting only events that
//! occurred at or before T and decaying them to T. Nothing depends on the
//! order events arrived in: every query is a function of the set of events
//! applied and of T, and sums are exact (see [`fixed`]).
//!
//! The model, in short (`docs/scoring.md` has the worked example):
//! - bans are standing conditions until lifted; licences relieve export bans
//!   in part (see [`standing`]);
//! - every other type adds `weight * severity * confidence` (times `value`
//!   for market signals) that halves every `half_life_days`;
//! - contributions are grouped into [`Component`]s; their sum, the pressure,
//!   maps to a score by `100 * (1 - exp(-pressure / scale))`.

mod answers;
mod apply;
mod decay;
mod fixed;
pub mod model;
mod over_time;
mod products;
mod standing;
mod texts;

pub use answers::{BanInForce, Contribution, Explanation, Lift, OtherContributions, PolicyChange, Score};
pub use model::{BanModel, DecayModel, LicenceModel, ScoringModel};
pub use over_time::{HistoryPoint, TimelineEvent, MAX_HISTORY_POINTS};

use crate::catalog::{Catalog, VendorId};
use crate::event::{BanKind, Component, EventType, Timestamp};
use decay::{DecayBook, Geometry};
use fixed::FixedSum;
use products::{ProductId, Products};
use standing::{Governing, InForce, InForceSum, Standing, StandingBook};
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::ControlFlow;
use std::sync::Arc;
use texts::{TextRef, Texts};

/// What applying an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// First time this id was seen: it now counts.
    Accepted,
    /// The id was seen before: nothing changed.
    Duplicate,
}

/// Counts since the engine was created.
/// Most bans of one kind an explanation lists (the newest, when more are
/// in force); the rest are counted in `other_bans_in_force`. Real policy
/// histories hold a few dozen at most.
pub const MAX_BANS_LISTED: usize = 100;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub accepted: u64,
    pub duplicates: u64,
}

/// Where a contribution came from, kept for explanations.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source {
    pub(crate) id: TextRef,
    title: Option<TextRef>,
    pub(crate) at: Timestamp,
    pub(crate) kind: EventType,
}

#[derive(Debug, Default)]
struct VendorState {
    /// Decaying contributions, by type (indexed by `EventType as usize`;
    /// only the decaying types' books are used).
    decaying: [DecayBook; EventType::ALL.len()],
    standing: StandingBook,
    /// The latest event (by time, then smallest id): order-independent.
    last_event: Option<Source>,
    /// When its earliest event occurred.
    first_event: Option<Timestamp>,
}

/// The engine's map keys are already well spread or easy to spread, so no
/// general-purpose hashing: event ids are remembered by their 128-bit XXH3
/// hash, which is uniform, and the map uses its low bits directly (two
/// distinct ids collide with probability about n²/2¹²⁹, 10⁻²⁶ for a million
/// events); cell numbers (`decay`) are small consecutive integers, which a
/// multiplication spreads over the table (Fibonacci hashing).
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
    fn write_i64(&mut self, n: i64) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdSet = hashbrown::HashSet<u128, BuildHasherDefault<KeyHasher>>;

/// The scoring state: every event applied, arranged per vendor.
pub struct Engine {
    catalog: Arc<Catalog>,
    model: ScoringModel,
    /// Each decaying type's cells and weight (indexed like `VendorState::decaying`).
    geometry: [Option<Geometry>; EventType::ALL.len()],
    seen: IdSet,
    texts: Texts,
    /// Interned product names: an event's products are a shared list of ids.
    products: Products,
    vendors: Vec<VendorState>,
    stats: EngineStats,
    /// See [`Engine::held_bytes`].
    held_bytes: u64,
}

/// Bytes per event id remembered: its 128-bit hash and a control byte, at
/// the set's 7/8 load.
const SEEN_BYTES: u64 = (size_of::<u128>() as u64 + 1) * 8 / 7;

impl Engine {
    /// A new engine. The model must have passed [`ScoringModel::validate`].
    pub fn new(catalog: Arc<Catalog>, model: ScoringModel) -> Self {
        let vendors = catalog.ids().map(|_| VendorState::default()).collect();
        let geometry = EventType::ALL.map(|kind| model.decay(kind).map(Geometry::new));
        Self {
            catalog,
            geometry,
            model,
            seen: IdSet::default(),
            texts: Texts::default(),
            products: Products::default(),
            vendors,
            stats: EngineStats::default(),
            held_bytes: 0,
        }
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    pub fn model(&self) -> &ScoringModel {
        &self.model
    }

    pub fn stats(&self) -> EngineStats {
        self.stats
    }

    /// An estimate of the heap bytes held for the events applied, kept up
    /// to date as they are (reading it costs nothing). It counts what each
    /// event adds at its size: its id in the set of ids seen, its id, title
    /// and `source_url` (kept for standing events only), one record per
    /// vendor, its product list (once, shared by its vendors), the names of
    /// products not seen before, and new cells of time; hash tables at
    /// their fullest load. It leaves out the spare capacity of growing
    /// lists and tables and the allocator's overhead, so the process holds
    /// somewhat more (`BENCHMARKS.md` §8 compares it with measured memory).
    pub fn held_bytes(&self) -> u64 {
        self.held_bytes
    }

    /// Whether an event with this id has been applied.
    pub fn contains(&self, id: &str) -> bool {
        self.seen.contains(&id_key(id))
    }

    /// The vendor's score as of `at`.
    pub fn score(&self, vendor: VendorId, at: Timestamp) -> Score {
        self.finish(self.component_sums(vendor, at))
    }

    /// Every vendor's score as of `at`, in catalog order.
    pub fn scores_at(&self, at: Timestamp) -> Vec<(VendorId, Score)> {
        self.catalog.ids().map(|v| (v, self.score(v, at))).collect()
    }

    /// When the vendor's latest event at or before `at` occurred.
    pub fn last_event_at(&self, vendor: VendorId, at: Timestamp) -> Option<Timestamp> {
        self.last_source(vendor, at).map(|s| s.at)
    }

    /// The vendor's latest event that occurred at or before `at` (by time,
    /// then smallest id). Asking about a time after the latest event, as
    /// the service does, costs nothing; an earlier time walks the vendor's
    /// events once.
    fn last_source(&self, vendor: VendorId, at: Timestamp) -> Option<Source> {
        let state = &self.vendors[vendor.index()];
        match state.last_event {
            None => None,
            Some(l) if l.at <= at => Some(l),
            Some(_) => {
                let decaying = state.decaying.iter().flat_map(DecayBook::iter).map(|d| &d.source);
                let key = |s: &Source| (s.at, std::cmp::Reverse(self.texts.get(s.id)));
                state
                    .standing
                    .sources()
                    .chain(decaying)
                    .filter(|s| s.at <= at)
                    .max_by(|a, b| key(a).cmp(&key(b)))
                    .copied()
            }
        }
    }

    /// The bans in force for a vendor as of `at`.
    /// One per scope (the vendor as a whole, or a product), by kind, then
    /// scope; see [`Engine::newest_bans_in_force`] for a bounded answer.
    pub fn bans_in_force(&self, vendor: VendorId, at: Timestamp) -> Vec<BanInForce> {
        BanKind::ALL.into_iter().flat_map(|kind| self.bans_of_kind_in_force(vendor, kind, at)).collect()
    }

    /// The bans of one kind in force, by scope.
    fn bans_of_kind_in_force(&self, vendor: VendorId, kind: BanKind, at: Timestamp) -> Vec<BanInForce> {
        // One walk: the shown amounts are scaled once the sum is known.
        let mut sum = InForceSum::new(self.model.ban(kind).weight);
        let mut governing = Vec::new();
        self.governing(vendor, kind, at, |g| {
            sum.add(&g);
            governing.push(g);
            ControlFlow::Continue(())
        });
        let factor = sum.finish().factor;
        governing.iter().map(|g| self.ban_in_force(kind, g, factor)).collect()
    }

    /// The bans of one kind in force for a vendor as of `at`: how many
    /// (one per scope), and the `limit` newest (by time, newest first, then
    /// event id, then product), in that order. It holds at most `2 * limit`
    /// bans at a time, however many are in force.
    pub fn newest_bans_in_force(
        &self,
        vendor: VendorId,
        kind: BanKind,
        at: Timestamp,
        limit: usize,
    ) -> (usize, Vec<BanInForce>) {
        let mut sum = InForceSum::new(self.model.ban(kind).weight);
        // (newest first, event id, position in scope order)
        let order = |a: &(Governing<'_>, usize), b: &(Governing<'_>, usize)| {
            (std::cmp::Reverse(a.0.ban.source.at), self.texts.get(a.0.ban.source.id), a.1).cmp(&(
                std::cmp::Reverse(b.0.ban.source.at),
                self.texts.get(b.0.ban.source.id),
                b.1,
            ))
        };
        let mut kept: Vec<(Governing<'_>, usize)> = Vec::new();
        let mut seen = 0;
        self.governing(vendor, kind, at, |g| {
            sum.add(&g);
            kept.push((g, seen));
            seen += 1;
            if kept.len() >= 2 * limit.max(1) {
                kept.sort_by(order);
                kept.truncate(limit);
            }
            ControlFlow::Continue(())
        });
        kept.sort_by(order);
        kept.truncate(limit);
        let sum = sum.finish();
        (sum.count, kept.iter().map(|(g, _)| self.ban_in_force(kind, g, sum.factor)).collect())
    }

    fn ban_in_force(&self, kind: BanKind, g: &Governing<'_>, factor: f64) -> BanInForce {
        BanInForce {
            kind,
            product: self.product_name(g.scope),
            event_id: self.texts.get(g.ban.source.id).to_owned(),
            title: self.title(&g.ban.source),
            since: g.ban.source.at,
            relief: g.relief,
            licence_event_id: g.licence.map(|l| self.texts.get(l.id).to_owned()),
            contribution: g.amount * factor,
        }
    }

    /// The vendor's latest event as of now (applied so far): type, id, title, time.
    pub fn last_event(
        &self,
        vendor: VendorId,
        at: Timestamp,
    ) -> Option<(EventType, String, Option<String>, Timestamp)> {
        self.last_source(vendor, at).map(|s| (s.kind, self.texts.get(s.id).to_owned(), self.title(&s), s.at))
    }

    /// The latest lift of each kind, as of `at`, that ended a ban of the vendor.
    pub fn last_lifts(&self, vendor: VendorId, at: Timestamp) -> Vec<Lift> {
        BanKind::ALL
            .into_iter()
            .filter_map(|kind| {
                let (l, scope) =
                    self.vendors[vendor.index()].standing.last_effective_lift(kind, at, &self.products, &self.texts)?;
                Some(Lift {
                    kind,
                    product: self.product_name(scope),
                    event_id: self.texts.get(l.source.id).to_owned(),
                    title: self.title(&l.source),
                    occurred_at: l.source.at,
                })
            })
            .collect()
    }

    /// The policy changes for a vendor that occurred within `from..=at`, as
    /// of `at`, oldest first: every ban imposed, and every lift that ended a
    /// ban in force just before it (a lift matching nothing is not news).
    /// One per event, with the products it names; see
    /// [`Engine::newest_policy_changes`] for a bounded answer.
    pub fn policy_changes(&self, vendor: VendorId, from: Timestamp, at: Timestamp) -> Vec<PolicyChange> {
        let changes = self.changes(vendor, from, at);
        changes.into_iter().map(|(kind, lifted, s)| self.policy_change(kind, lifted, s)).collect()
    }

    /// The policy changes of [`Engine::policy_changes`]: how many, and the
    /// `limit` newest (by time, newest first, then event id), in that order.
    pub fn newest_policy_changes(
        &self,
        vendor: VendorId,
        from: Timestamp,
        at: Timestamp,
        limit: usize,
    ) -> (usize, Vec<PolicyChange>) {
        let mut changes = self.changes(vendor, from, at);
        let key = |s: &Standing| (std::cmp::Reverse(s.source.at), self.texts.get(s.source.id));
        changes.sort_by(|a, b| key(a.2).cmp(&key(b.2)));
        let newest = changes.iter().take(limit).map(|&(kind, lifted, s)| self.policy_change(kind, lifted, s));
        (changes.len(), newest.collect())
    }

    /// The records of [`Engine::policy_changes`], oldest first (by time,
    /// then event id; an event id is unique, so nothing ties).
    fn changes(&self, vendor: VendorId, from: Timestamp, at: Timestamp) -> Vec<(BanKind, bool, &Standing)> {
        let book = &self.vendors[vendor.index()].standing;
        let mut out = Vec::new();
        for kind in BanKind::ALL {
            for lifted in [false, true] {
                for s in book.occurred(kind, lifted, from, at) {
                    if !lifted || self.ended_a_ban(vendor, kind, s) {
                        out.push((kind, lifted, s));
                    }
                }
            }
        }
        out.sort_by(|a, b| {
            (a.2.source.at, self.texts.get(a.2.source.id)).cmp(&(b.2.source.at, self.texts.get(b.2.source.id)))
        });
        out
    }

    fn policy_change(&self, kind: BanKind, lifted: bool, s: &Standing) -> PolicyChange {
        // In key order, which is the order of their names in lower case.
        let products = s.products.iter().flat_map(|l| l.iter()).map(|&p| self.products.name(p).to_owned()).collect();
        PolicyChange {
            kind,
            lifted,
            products,
            event_id: self.texts.get(s.source.id).to_owned(),
            title: self.title(&s.source),
            source_url: s.url.map(|u| self.texts.get(u).to_owned()),
            occurred_at: s.source.at,
        }
    }

    /// Whether a lift ended a ban: one in force just before it, or imposed
    /// at the same instant (a lift at the same instant wins); of any scope
    /// if it lifts the vendor as a whole, else of one of its products.
    fn ended_a_ban(&self, vendor: VendorId, kind: BanKind, lift: &Standing) -> bool {
        let at = lift.source.at;
        let ends = |scope: Option<ProductId>| match (&lift.products, scope) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(_), Some(p)) => lift.names(p, &self.products),
        };
        let before = Timestamp::from_nanos(at.nanos().saturating_sub(1));
        let mut ended = false;
        self.governing(vendor, kind, before, |g| {
            ended = ends(g.scope);
            if ended {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        ended
            || self.vendors[vendor.index()].standing.occurred(kind, false, at, at).any(|b| match &b.products {
                None => lift.products.is_none(),
                Some(_) => lift.products.is_none() || lift.shares_a_product(b, &self.products),
            })
    }

    /// The vendor's score as of `at` and what makes it up: bans in force and
    /// the `limit` largest contributions.
    pub fn explain(&self, vendor: VendorId, at: Timestamp, limit: usize) -> Explanation {
        let score = self.finish(self.component_sums(vendor, at));
        let (top, counted) = self.largest_terms(vendor, at, limit);
        // The rest of the pressure: exact, whatever the listed terms' order.
        let mut other = FixedSum::default();
        other.add(score.pressure);
        top.iter().for_each(|t| other.add(-t.amount));
        let (listed_bans, unlisted_bans) = self.listed_bans(vendor, at);
        let v = self.catalog.get(vendor);
        Explanation {
            vendor: v.id.clone(),
            name: v.name.clone(),
            origin: v.origin.clone(),
            as_of: at,
            score: score.score,
            pressure: score.pressure,
            components: score.component_map(),
            bans_in_force: listed_bans,
            other_bans_in_force: unlisted_bans,
            contributions: top
                .iter()
                .map(|t| Contribution {
                    event_id: self.texts.get(t.source.id).to_owned(),
                    kind: t.source.kind,
                    title: self.title(&t.source),
                    component: t.component,
                    contribution: t.amount,
                    occurred_at: t.source.at,
                    product: self.product_name(t.scope),
                })
                .collect(),
            other_contributions: OtherContributions { count: counted - top.len(), pressure: other.value() },
            last_event_at: self.last_event_at(vendor, at),
        }
    }

    /// The bans an explanation lists, and how many more are in force: all
    /// of them (by kind, then scope) up to [`MAX_BANS_LISTED`] of a kind;
    /// beyond, that kind's newest [`MAX_BANS_LISTED`], so that what one
    /// explanation holds and sends does not grow with what producers send.
    fn listed_bans(&self, vendor: VendorId, at: Timestamp) -> (Vec<BanInForce>, usize) {
        let (mut listed, mut unlisted) = (Vec::new(), 0);
        for kind in BanKind::ALL {
            let (count, newest) = self.newest_bans_in_force(vendor, kind, at, MAX_BANS_LISTED);
            if count <= MAX_BANS_LISTED {
                listed.extend(self.bans_of_kind_in_force(vendor, kind, at));
            } else {
                unlisted += count - newest.len();
                listed.extend(newest);
            }
        }
        (listed, unlisted)
    }

    fn finish(&self, sums: [FixedSum; 5]) -> Score {
        let total: FixedSum = sums.iter().fold(FixedSum::default(), |mut acc, s| {
            acc.add(s.value());
            acc
        });
        let pressure = total.value();
        Score { score: self.model.saturate(pressure), pressure, components: sums.map(FixedSum::value) }
    }

    /// The vendor's components as of `at`: decaying contributions a cell of
    /// time at a time (see [`decay`]), and the bans in force.
    fn component_sums(&self, vendor: VendorId, at: Timestamp) -> [FixedSum; 5] {
        let state = &self.vendors[vendor.index()];
        let mut sums = [FixedSum::default(); 5];
        for kind in EventType::ALL {
            if let Some(geometry) = &self.geometry[kind as usize] {
                let total = state.decaying[kind as usize].total(geometry, at);
                sums[kind.component().index()].add(total.value());
            }
        }
        for kind in BanKind::ALL {
            sums[ban_component(kind).index()].add(self.in_force(vendor, kind, at).total);
        }
        sums
    }

    /// The `limit` largest contributions to the vendor as of `at` (by
    /// absolute amount, then event id, then product), largest first, and
    /// how many contributions count in all.
    ///
    /// It reads only the cells of time that can hold one of them: a cell
    /// whose bound is below the smallest of the `limit` largest terms found
    /// so far cannot, and that smallest term only grows as cells are read.
    /// So the answer is the one a scan of every event gives, at a fraction of
    /// the cost (the newest cells decay least, and are read first).
    fn largest_terms(&self, vendor: VendorId, at: Timestamp, limit: usize) -> (Vec<Term>, usize) {
        let by_size = |a: &Term, b: &Term| self.larger_first(a, b);
        let mut kept: Vec<Term> = Vec::new();
        // The smallest of the `limit` largest terms found so far (0: not yet known).
        let mut floor = 0.0f64;
        let offer = |t: Term, kept: &mut Vec<Term>, floor: &mut f64| {
            kept.push(t);
            if kept.len() >= 2 * limit {
                kept.select_nth_unstable_by(limit - 1, by_size);
                kept.truncate(limit);
                *floor = kept[limit - 1].amount.abs();
            }
        };
        let mut counted = 0;
        for kind in BanKind::ALL {
            let component = ban_component(kind);
            let factor = self.in_force(vendor, kind, at).factor;
            self.governing(vendor, kind, at, |g| {
                let amount = g.amount * factor;
                if amount != 0.0 {
                    counted += 1;
                    if limit > 0 {
                        let t = Term { source: g.ban.source, component, amount, scope: g.scope };
                        offer(t, &mut kept, &mut floor);
                    }
                }
                ControlFlow::Continue(())
            });
        }
        let state = &self.vendors[vendor.index()];
        let mut cells = Vec::new();
        for kind in EventType::ALL {
            if let Some(geometry) = &self.geometry[kind as usize] {
                cells.extend(state.decaying[kind as usize].cells_as_of(geometry, at).map(|c| (kind, geometry, c)));
            }
        }
        cells.sort_by(|a, b| b.2.bound.total_cmp(&a.2.bound));
        for (kind, geometry, cell) in cells {
            counted += cell.counted;
            if limit == 0 || cell.counted == 0 || cell.bound < floor {
                continue;
            }
            for d in cell.items.iter().filter(|d| d.source.at <= at) {
                let amount = geometry.term(d, at);
                if amount != 0.0 {
                    let t = Term { source: d.source, component: kind.component(), amount, scope: None };
                    offer(t, &mut kept, &mut floor);
                }
            }
        }
        kept.sort_by(by_size);
        kept.truncate(limit);
        (kept, counted)
    }

    /// The order of explanations: larger absolute amount first, then event
    /// id, then product.
    fn larger_first(&self, a: &Term, b: &Term) -> std::cmp::Ordering {
        b.amount
            .abs()
            .total_cmp(&a.amount.abs())
            .then_with(|| self.texts.get(a.source.id).cmp(self.texts.get(b.source.id)))
            .then_with(|| self.products.scope_cmp(a.scope, b.scope))
    }

    /// The bans of one kind in force for a vendor, in sum.
    fn in_force(&self, vendor: VendorId, kind: BanKind, at: Timestamp) -> InForce {
        self.vendors[vendor.index()].standing.in_force(kind, at, &self.model, &self.products, &self.texts)
    }

    /// Visits the governing ban of each scope in force (see [`StandingBook::governing`]).
    fn governing<'a>(
        &'a self,
        vendor: VendorId,
        kind: BanKind,
        at: Timestamp,
        visit: impl FnMut(Governing<'a>) -> ControlFlow<()>,
    ) {
        self.vendors[vendor.index()].standing.governing(kind, at, &self.model, &self.products, &self.texts, visit)
    }

    fn title(&self, s: &Source) -> Option<String> {
        s.title.map(|t| self.texts.get(t).to_owned())
    }

    fn product_name(&self, scope: Option<ProductId>) -> Option<String> {
        scope.map(|p| self.products.name(p).to_owned())
    }
}

/// One contribution, as visited.
#[derive(Debug, Clone, Copy)]
struct Term {
    source: Source,
    component: Component,
    amount: f64,
    scope: Option<ProductId>,
}

fn ban_component(kind: BanKind) -> Component {
    match kind {
        BanKind::Export => EventType::ExportBan,
        BanKind::Purchase => EventType::PurchaseBan,
    }
    .component()
}

pub(crate) fn id_key(id: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128(id.as_bytes())
}

#[cfg(test)]
mod tests;
