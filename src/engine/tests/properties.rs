//! The engine's laws, checked on generated event sets.

use super::*;
use crate::catalog::VendorSet;
use proptest::prelude::*;
use std::borrow::Cow;

const BASE: i64 = 1_735_689_600_000_000_000; // 2025-01-01T00:00:00Z
const PRODUCTS: [&str; 3] = ["H20", "h20", "B30A"];

fn arb_event(id: usize) -> impl Strategy<Value = Event<'static>> {
    (
        prop::sample::select(EventType::ALL.to_vec()),
        1u8..8, // vendor mask over the first three vendors
        prop::collection::vec(prop::sample::select(PRODUCTS.to_vec()), 0..3),
        -720i64..720, // day offset
        prop::option::of(0.0f64..=1.0),
        0.0f64..=1.0,
        -1.0f64..=1.0,
    )
        .prop_map(move |(kind, mask, products, day, severity, confidence, value)| {
            let catalog = Catalog::default();
            let mut vendors = VendorSet::default();
            for (bit, name) in ["nvidia", "amd", "huawei"].iter().enumerate() {
                if mask & (1 << bit) != 0 {
                    vendors.insert(catalog.lookup(name).unwrap());
                }
            }
            Event {
                id: Cow::Owned(format!("ev-{id}")),
                kind,
                occurred_at: Timestamp::from_nanos(BASE + day * DAY),
                vendors,
                products: products.into_iter().map(Cow::Borrowed).collect(),
                severity,
                confidence,
                value: (kind == EventType::MarketSignal).then_some(value),
                actor: None,
                title: Some(Cow::Owned(format!("title {id}"))),
                source_url: None,
            }
        })
}

fn arb_events() -> impl Strategy<Value = Vec<Event<'static>>> {
    (0usize..40).prop_flat_map(|n| (0..n).map(arb_event).collect::<Vec<_>>())
}

fn arb_at() -> impl Strategy<Value = Timestamp> {
    (-800i64..800).prop_map(|d| Timestamp::from_nanos(BASE + d * DAY + 12 * 3_600_000_000_000))
}

fn engine_of(events: &[Event<'_>]) -> Engine {
    let mut e = engine();
    events.iter().for_each(|ev| {
        e.apply(ev);
    });
    e
}

fn all_scores(e: &Engine, at: Timestamp) -> Vec<(VendorId, Score)> {
    e.scores_at(at)
}

fn explanations(e: &Engine, at: Timestamp) -> Vec<Explanation> {
    e.catalog().ids().map(|v| e.explain(v, at, 1000)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn any_permutation_gives_identical_scores_and_explanations(
        (events, shuffled) in arb_events().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
        at in arb_at(),
    ) {
        let a = engine_of(&events);
        let b = engine_of(&shuffled);
        prop_assert_eq!(all_scores(&a, at), all_scores(&b, at));
        prop_assert_eq!(explanations(&a, at), explanations(&b, at));
        for v in a.catalog().ids() {
            prop_assert_eq!(a.last_lifts(v, at), b.last_lifts(v, at));
            let since = Timestamp::from_nanos(at.nanos() - 30 * DAY);
            prop_assert_eq!(a.policy_changes(v, since, at), b.policy_changes(v, since, at));
            prop_assert_eq!(a.last_event(v, at), b.last_event(v, at));
        }
    }

    #[test]
    fn the_last_event_as_of_a_time_is_the_latest_that_had_occurred(events in arb_events(), at in arb_at()) {
        let e = engine_of(&events);
        for v in e.catalog().ids() {
            // The first event of each id counts (a later one with the same id is a duplicate).
            let mut seen = std::collections::HashSet::new();
            let expected = events
                .iter()
                .filter(|ev| seen.insert(ev.id.clone()))
                .filter(|ev| ev.vendors.contains(v) && ev.occurred_at <= at)
                .map(|ev| (ev.occurred_at, std::cmp::Reverse(ev.id.clone())))
                .max()
                .map(|(t, std::cmp::Reverse(id))| (t, id.to_string()));
            let got = e.last_event(v, at).map(|(_, id, _, t)| (t, id));
            prop_assert_eq!(got, expected);
            prop_assert_eq!(e.last_event_at(v, at), e.last_event(v, at).map(|(.., t)| t));
        }
    }

    #[test]
    fn redelivering_any_events_changes_nothing(
        events in arb_events(),
        again in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
        at in arb_at(),
    ) {
        let once = engine_of(&events);
        let mut twice = engine_of(&events);
        if !events.is_empty() {
            for i in again {
                prop_assert_eq!(twice.apply(i.get(&events)), Applied::Duplicate);
            }
        }
        prop_assert_eq!(all_scores(&once, at), all_scores(&twice, at));
        prop_assert_eq!(explanations(&once, at), explanations(&twice, at));
    }

    #[test]
    fn a_ban_holds_until_a_matching_lift(
        others in arb_events(),
        ban_day in -300i64..300,
        lift_after in 0i64..400,
        query_after in 0i64..800,
        product in prop::option::of(prop::sample::select(PRODUCTS.to_vec())),
        purchase in any::<bool>(),
    ) {
        // Other events never lift or ban: they must not end the ban.
        let others: Vec<_> = others.into_iter().filter(|e| matches!(e.kind.role(), Role::Decaying | Role::Licence)).collect();
        let (ban_kind, lift_kind) = if purchase {
            (EventType::PurchaseBan, EventType::PurchaseBanLifted)
        } else {
            (EventType::ExportBan, EventType::ExportBanLifted)
        };
        let mut e = engine_of(&others);
        let nvidia = nvidia(&e);
        let mut vendors = VendorSet::default();
        vendors.insert(nvidia);
        let ban_at = Timestamp::from_nanos(BASE + ban_day * DAY);
        let products: Vec<Cow<'static, str>> = product.into_iter().map(Cow::Borrowed).collect();
        let ban = Event { id: "the-ban".into(), kind: ban_kind, occurred_at: ban_at, vendors, products: products.clone(),
            severity: Some(1.0), confidence: 1.0, value: None, actor: None, title: None, source_url: None };
        e.apply(&ban);
        let query = Timestamp::from_nanos(ban_at.nanos() + query_after * DAY);
        let held = e.bans_in_force(nvidia, query).iter().any(|b| b.event_id == "the-ban");
        prop_assert!(held, "the ban holds with no lift");

        let lift_at = Timestamp::from_nanos(ban_at.nanos() + lift_after * DAY);
        // A lift for the vendor as a whole, or for the same product in another case.
        let lift_products = products.iter().map(|p| Cow::Owned(p.to_uppercase())).collect();
        e.apply(&Event { id: "the-lift".into(), kind: lift_kind, occurred_at: lift_at, products: lift_products, ..ban });
        let held = e.bans_in_force(nvidia, query).iter().any(|b| b.event_id == "the-ban");
        prop_assert_eq!(held, query < lift_at, "in force exactly until the lift");
    }

    #[test]
    fn the_pressure_is_the_sum_of_the_contributions(events in arb_events(), shift in 0i64..DAY, at in arb_at()) {
        let e = engine_of(&spread_over_the_day(events, shift));
        for v in e.catalog().ids() {
            let pressure = e.score(v, at).pressure;
            let terms = all_terms(&e, v, at);
            let direct: f64 = terms.iter().map(|t| t.amount).sum();
            prop_assert!(
                (pressure - direct).abs() <= 1e-9,
                "{:?}: pressure {} but its {} contributions add up to {}", v, pressure, terms.len(), direct
            );
        }
    }

    #[test]
    fn explanations_list_what_a_scan_of_every_event_ranks_first(
        // Enough events per vendor that most cells are skipped.
        events in (0usize..150).prop_flat_map(|n| (0..n).map(arb_event).collect::<Vec<_>>()),
        shift in 0i64..DAY,
        at in arb_at(),
        limit in 0usize..8,
    ) {
        let e = engine_of(&spread_over_the_day(events, shift));
        for v in e.catalog().ids() {
            let (top, counted) = e.largest_terms(v, at, limit);
            let mut all = all_terms(&e, v, at);
            prop_assert_eq!(counted, all.len());
            all.sort_by(|a, b| e.larger_first(a, b));
            all.truncate(limit);
            let key = |t: &Term| (e.texts.get(t.source.id).to_owned(), t.scope, t.amount.to_bits());
            prop_assert_eq!(top.iter().map(key).collect::<Vec<_>>(), all.iter().map(key).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_decaying_contribution_halves_per_half_life(
        kind in prop::sample::select(EventType::ALL.iter().copied().filter(|k| k.role() == Role::Decaying).collect::<Vec<_>>()),
        severity in 0.01f64..=1.0,
        age_days in 0.0f64..400.0,
    ) {
        let mut e = engine();
        let nvidia = nvidia(&e);
        let mut vendors = VendorSet::default();
        vendors.insert(nvidia);
        e.apply(&Event { id: "d".into(), kind, occurred_at: Timestamp::from_nanos(BASE), vendors, products: vec![],
            severity: Some(severity), confidence: 1.0, value: (kind == EventType::MarketSignal).then_some(1.0),
            actor: None, title: None, source_url: None });
        let h = e.model().decay(kind).unwrap().half_life_days;
        let at = |days: f64| Timestamp::from_nanos(BASE + (days * DAY as f64) as i64);
        let now = e.score(nvidia, at(age_days)).pressure;
        let later = e.score(nvidia, at(age_days + h)).pressure;
        prop_assert!((later - now / 2.0).abs() <= 1e-9 * now.abs().max(1e-3), "{} then {}", now, later);
    }

    #[test]
    fn scores_stay_within_0_and_100_and_rise_with_severity(
        events in arb_events(),
        which in any::<prop::sample::Index>(),
        bump in 0.0f64..=1.0,
        at in arb_at(),
    ) {
        let e = engine_of(&events);
        for (_, s) in all_scores(&e, at) {
            prop_assert!((0.0..=100.0).contains(&s.score), "{:?}", s);
        }
        // Raise the severity of one risk-raising event: no vendor's score may fall.
        let raising = |ev: &Event| match ev.kind.role() {
            Role::Ban(_) | Role::Decaying => ev.value.is_none_or(|v| v >= 0.0),
            Role::Lift(_) | Role::Licence => false,
        };
        let candidates: Vec<usize> = (0..events.len()).filter(|i| raising(&events[*i])).collect();
        prop_assume!(!candidates.is_empty());
        let i = *which.get(&candidates);
        let mut stronger = events.clone();
        let model = ScoringModel::default();
        let current = model.severity(stronger[i].kind, stronger[i].severity);
        stronger[i].severity = Some(current + (1.0 - current) * bump);
        let higher = engine_of(&stronger);
        for ((v, a), (_, b)) in all_scores(&e, at).into_iter().zip(all_scores(&higher, at)) {
            prop_assert!(b.score >= a.score, "vendor {}: {} fell to {}", v, a.score, b.score);
        }
    }
}

/// Moves events to different times of their day, so that some share a cell
/// of time with a query time (summed event by event) and others do not
/// (summed a cell at a time).
fn spread_over_the_day(events: Vec<Event<'static>>, shift: i64) -> Vec<Event<'static>> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, mut ev)| {
            ev.occurred_at = Timestamp::from_nanos(ev.occurred_at.nanos() + shift * (i as i64 + 1) % DAY);
            ev
        })
        .collect()
}

/// Every non-zero contribution, by scanning every event: the reference for
/// [`Engine::largest_terms`], which reads only the cells that matter.
fn all_terms(e: &Engine, vendor: VendorId, at: Timestamp) -> Vec<Term> {
    let state = &e.vendors[vendor.index()];
    let mut terms = Vec::new();
    for kind in EventType::ALL {
        let Some(geometry) = &e.geometry[kind as usize] else { continue };
        for d in state.decaying[kind as usize].iter().filter(|d| d.source.at <= at) {
            let amount = geometry.term(d, at);
            if amount != 0.0 {
                terms.push(Term { source: d.source, component: kind.component(), amount, scope: None });
            }
        }
    }
    for kind in BanKind::ALL {
        let factor = e.in_force(vendor, kind, at).factor;
        e.governing(vendor, kind, at, |g| {
            if g.amount * factor != 0.0 {
                terms.push(Term {
                    source: g.ban.source,
                    component: ban_component(kind),
                    amount: g.amount * factor,
                    scope: g.scope,
                });
            }
            ControlFlow::Continue(())
        });
    }
    terms
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The bounded answers a scrape uses are the first of the whole lists,
    /// sorted the way a scrape sorts them (newest first, then event id,
    /// stably).
    #[test]
    fn the_newest_bans_and_changes_are_the_head_of_the_whole_lists(
        events in arb_events(),
        at in arb_at(),
        from in arb_at(),
        limit in 0usize..4,
    ) {
        let e = engine_of(&events);
        for (vendor, _) in e.scores_at(at) {
            let mut all = e.bans_in_force(vendor, at);
            all.sort_by(|a, b| b.since.cmp(&a.since).then_with(|| a.event_id.cmp(&b.event_id)));
            for kind in BanKind::ALL {
                let of_kind: Vec<BanInForce> = all.iter().filter(|b| b.kind == kind).cloned().collect();
                let (count, newest) = e.newest_bans_in_force(vendor, kind, at, limit);
                prop_assert_eq!(count, of_kind.len());
                prop_assert_eq!(&newest[..], &of_kind[..limit.min(of_kind.len())]);
            }
            let mut changes = e.policy_changes(vendor, from, at);
            changes.sort_by(|a, b| b.occurred_at.cmp(&a.occurred_at).then_with(|| a.event_id.cmp(&b.event_id)));
            let (count, newest) = e.newest_policy_changes(vendor, from, at, limit);
            prop_assert_eq!(count, changes.len());
            prop_assert_eq!(&newest[..], &changes[..limit.min(changes.len())]);
        }
    }
}
