use super::decay::Decaying;
use super::*;
use crate::event::{Decoder, Event, Limits, Role};

mod properties;

const DAY: i64 = 86_400_000_000_000;

fn t(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

fn engine() -> Engine {
    Engine::new(Arc::new(Catalog::default()), ScoringModel::default())
}

/// Applies events written as JSON, through the real decoder.
fn apply(engine: &mut Engine, lines: &[&str]) {
    let decoder = Decoder::new(engine.catalog().clone(), Limits::default());
    for line in lines {
        engine.apply(&decoder.decode(line.as_bytes()).unwrap());
    }
}

fn nvidia(e: &Engine) -> VendorId {
    e.catalog().lookup("nvidia").unwrap()
}

#[test]
fn an_empty_engine_scores_zero() {
    let e = engine();
    let s = e.score(nvidia(&e), Timestamp::now());
    assert_eq!(s.score, 0.0);
    assert_eq!(s.components, [0.0; 5]);
}

#[test]
fn a_decaying_contribution_halves_every_half_life() {
    let mut e = engine();
    apply(
        &mut e,
        &[
            r#"{"id":"p","type":"procurement_pressure","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"],"severity":1}"#,
        ],
    );
    let v = nvidia(&e);
    let at0 = e.score(v, t("2025-01-01T00:00:00Z")).pressure;
    let at90 = e.score(v, t("2025-04-01T00:00:00Z")).pressure; // 90 days later
    assert!((at0 - 0.5).abs() < 1e-12, "{at0}");
    assert!((at90 - 0.25).abs() < 1e-12, "{at90}");
    assert_eq!(e.score(v, t("2024-12-31T23:59:59Z")).pressure, 0.0, "not yet occurred");
}

#[test]
fn a_ban_holds_without_decay_until_a_matching_lift() {
    let mut e = engine();
    apply(
        &mut e,
        &[
            r#"{"id":"ban","type":"export_ban","occurred_at":"2025-04-15T00:00:00Z","vendors":["nvidia"],"products":["H20"],"severity":1}"#,
            r#"{"id":"wrong-lift","type":"export_ban_lifted","occurred_at":"2025-05-01T00:00:00Z","vendors":["nvidia"],"products":["H100"]}"#,
            r#"{"id":"lift","type":"export_ban_lifted","occurred_at":"2026-01-01T00:00:00Z","vendors":["nvidia"],"products":["h20"]}"#,
        ],
    );
    let v = nvidia(&e);
    let before = e.score(v, t("2025-04-16T00:00:00Z"));
    let much_later = e.score(v, t("2025-12-31T00:00:00Z"));
    assert!((before.component(Component::ExportControls) - 1.6 * 0.35).abs() < 1e-12);
    assert_eq!(before, much_later, "bans do not decay; a lift for another product changes nothing");
    assert_eq!(e.bans_in_force(v, t("2025-12-31T00:00:00Z")).len(), 1);
    assert_eq!(e.score(v, t("2026-01-01T00:00:00Z")).score, 0.0, "lifted, matching case-insensitively");
    assert!(e.bans_in_force(v, t("2026-01-02T00:00:00Z")).is_empty());
}

#[test]
fn a_lift_before_a_ban_does_not_lift_it_and_a_vendor_wide_lift_lifts_product_bans() {
    let mut e = engine();
    apply(
        &mut e,
        &[
            r#"{"id":"early-lift","type":"purchase_ban_lifted","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"]}"#,
            r#"{"id":"ban","type":"purchase_ban","occurred_at":"2025-09-17T00:00:00Z","vendors":["nvidia"],"products":["RTX Pro 6000D"]}"#,
            r#"{"id":"wide-ban","type":"purchase_ban","occurred_at":"2025-11-01T00:00:00Z","vendors":["nvidia"]}"#,
            r#"{"id":"product-lift","type":"purchase_ban_lifted","occurred_at":"2025-12-01T00:00:00Z","vendors":["nvidia"],"products":["RTX Pro 6000D"]}"#,
            r#"{"id":"wide-lift","type":"purchase_ban_lifted","occurred_at":"2026-02-01T00:00:00Z","vendors":["nvidia"]}"#,
        ],
    );
    let v = nvidia(&e);
    let kinds = |at| e.bans_in_force(v, t(at)).into_iter().map(|b| b.event_id).collect::<Vec<_>>();
    assert_eq!(kinds("2025-10-01T00:00:00Z"), ["ban"]);
    assert_eq!(kinds("2025-11-15T00:00:00Z"), ["wide-ban", "ban"]);
    assert_eq!(kinds("2025-12-15T00:00:00Z"), ["wide-ban"], "a product lift leaves the vendor-wide ban");
    assert!(kinds("2026-02-01T00:00:00Z").is_empty());
}

#[test]
fn bans_of_one_kind_combine_with_diminishing_returns_up_to_a_full_ban() {
    let mut e = engine();
    apply(
        &mut e,
        &[
            r#"{"id":"a","type":"export_ban","occurred_at":"2022-10-07T00:00:00Z","vendors":["nvidia"],"products":["A100","H100","A800","H800","L40S"],"severity":1}"#,
            r#"{"id":"b","type":"export_ban","occurred_at":"2022-10-07T00:00:00Z","vendors":["nvidia"],"products":["A100"],"severity":0.5}"#,
        ],
    );
    let s = e.score(nvidia(&e), t("2023-01-01T00:00:00Z"));
    let expected = 1.6 * (1.0 - 0.65f64.powi(5));
    assert!((s.component(Component::ExportControls) - expected).abs() < 1e-9, "{s:?}");
    let x = e.explain(nvidia(&e), t("2023-01-01T00:00:00Z"), 10);
    let shown: f64 = x.contributions.iter().map(|c| c.contribution).sum();
    assert!((shown - expected).abs() < 1e-9, "contributions add up to the component");
    let bans = e.bans_in_force(nvidia(&e), t("2023-01-01T00:00:00Z"));
    assert_eq!(bans.len(), 5, "one governing ban per product; a repeat does not add");
    assert!(bans.iter().all(|b| b.event_id == "a"));
}

#[test]
fn a_licence_relieves_earlier_bans_in_part_but_not_a_later_one() {
    let mut e = engine();
    apply(
        &mut e,
        &[
            r#"{"id":"ban","type":"export_ban","occurred_at":"2025-04-15T00:00:00Z","vendors":["nvidia"],"products":["H20"],"severity":1}"#,
            r#"{"id":"licence","type":"license_granted","occurred_at":"2025-08-01T00:00:00Z","vendors":["nvidia"],"products":["H20"],"severity":1}"#,
        ],
    );
    let v = nvidia(&e);
    let full = 1.6 * 0.35;
    let relieved = e.score(v, t("2025-09-01T00:00:00Z")).component(Component::ExportControls);
    assert!((relieved - full * 0.4).abs() < 1e-12, "{relieved}");
    let ban = &e.bans_in_force(v, t("2025-09-01T00:00:00Z"))[0];
    assert_eq!((ban.relief, ban.licence_event_id.as_deref()), (0.6, Some("licence")));

    apply(
        &mut e,
        &[
            r#"{"id":"reimposed","type":"export_ban","occurred_at":"2025-10-01T00:00:00Z","vendors":["nvidia"],"products":["H20"],"severity":1}"#,
        ],
    );
    let again = e.score(v, t("2025-10-02T00:00:00Z")).component(Component::ExportControls);
    assert!((again - full).abs() < 1e-12, "the later ban governs, unrelieved: {again}");
}

#[test]
fn a_duplicate_id_changes_nothing_even_with_other_content() {
    let mut e = engine();
    let first = r#"{"id":"x","type":"antitrust_action","occurred_at":"2025-09-15T00:00:00Z","vendors":["nvidia"]}"#;
    apply(&mut e, &[first]);
    let at = t("2025-10-01T00:00:00Z");
    let before = e.score(nvidia(&e), at);
    apply(
        &mut e,
        &[first, r#"{"id":"x","type":"export_ban","occurred_at":"2025-09-15T00:00:00Z","vendors":["nvidia"]}"#],
    );
    assert_eq!(e.score(nvidia(&e), at), before);
    assert_eq!(e.stats(), EngineStats { accepted: 1, duplicates: 2 });
}

#[test]
fn negative_market_signals_lower_pressure_and_the_score_floors_at_zero() {
    let mut e = engine();
    apply(
        &mut e,
        &[
            r#"{"id":"m","type":"market_signal","occurred_at":"2025-01-01T00:00:00Z","vendors":["nvidia"],"value":-1,"severity":1}"#,
        ],
    );
    let s = e.score(nvidia(&e), t("2025-01-01T00:00:00Z"));
    assert!((s.component(Component::Market) + 0.3).abs() < 1e-12);
    assert_eq!(s.score, 0.0);
}

#[test]
fn a_multi_vendor_event_moves_every_vendor_it_names_and_no_other() {
    let mut e = engine();
    apply(
        &mut e,
        &[
            r#"{"id":"m","type":"export_ban","occurred_at":"2025-04-15T00:00:00Z","vendors":["nvidia","amd"],"products":["H20","MI308"]}"#,
        ],
    );
    let at = t("2025-05-01T00:00:00Z");
    let c = e.catalog().clone();
    assert!(e.score(c.lookup("nvidia").unwrap(), at).score > 0.0);
    assert!(e.score(c.lookup("amd").unwrap(), at).score > 0.0);
    assert_eq!(e.score(c.lookup("intel").unwrap(), at).score, 0.0);
}

#[test]
fn an_explanation_lists_the_largest_contributions_and_accounts_for_the_rest() {
    let mut e = engine();
    let lines: Vec<String> = (0..30)
        .map(|i| format!(r#"{{"id":"e{i:02}","type":"supply_constraint","occurred_at":"2025-01-{:02}T00:00:00Z","vendors":["huawei"],"title":"SMIC capacity {i}"}}"#, i + 1))
        .collect();
    apply(&mut e, &lines.iter().map(String::as_str).collect::<Vec<_>>());
    let huawei = e.catalog().lookup("huawei").unwrap();
    let x = e.explain(huawei, t("2025-03-01T00:00:00Z"), 5);
    assert_eq!(x.contributions.len(), 5);
    assert_eq!(x.contributions[0].event_id, "e29", "the newest has decayed least");
    assert_eq!(x.contributions[0].title.as_deref(), Some("SMIC capacity 29"));
    assert!(x.contributions.windows(2).all(|w| w[0].contribution >= w[1].contribution));
    assert_eq!(x.other_contributions.count, 25);
    // The pressure, from the model's formula: event i (1 January + i days)
    // adds weight * default severity * 2^(-age / half-life).
    let m = ScoringModel::default().supply_constraint;
    let expected: f64 = (0..30)
        .map(|i| {
            let age_days = f64::from(59 - i); // 2025-03-01 is day 59 after 2025-01-01
            m.weight * m.default_severity * (-age_days / m.half_life_days).exp2()
        })
        .sum();
    assert!((x.pressure - expected).abs() < 1e-9 * expected, "{} against {expected}", x.pressure);
    let listed: f64 = x.contributions.iter().map(|c| c.contribution).sum();
    let five_newest: f64 =
        (25..30).map(|i| m.weight * m.default_severity * (-f64::from(59 - i) / m.half_life_days).exp2()).sum();
    assert!((listed - five_newest).abs() < 1e-9 * five_newest, "the five listed are the five newest");
    assert_eq!(x.last_event_at, Some(t("2025-01-30T00:00:00Z")));
    assert_eq!(e.explain(huawei, t("2025-03-01T00:00:00Z"), 0).other_contributions.count, 30);
    assert!(x.score > 0.0 && x.score == e.score(huawei, t("2025-03-01T00:00:00Z")).score);
    let _ = DAY;
}

#[test]
fn an_explanation_lists_at_most_the_newest_bans_of_a_kind_and_counts_the_rest() {
    let mut e = engine();
    let n = MAX_BANS_LISTED + 50;
    let mut lines: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"id":"b{i:03}","type":"export_ban","occurred_at":"2025-01-01T00:{:02}:{:02}Z","vendors":["nvidia"],"products":["P{i}"]}}"#,
                i / 60,
                i % 60
            )
        })
        .collect();
    lines.push(r#"{"id":"pb","type":"purchase_ban","occurred_at":"2025-02-01T00:00:00Z","vendors":["nvidia"],"products":["H20"]}"#.into());
    apply(&mut e, &lines.iter().map(String::as_str).collect::<Vec<_>>());
    let v = nvidia(&e);
    let at = t("2025-03-01T00:00:00Z");
    let x = e.explain(v, at, 5);
    let of = |k| x.bans_in_force.iter().filter(|b| b.kind == k).count();
    assert_eq!((of(BanKind::Export), of(BanKind::Purchase)), (MAX_BANS_LISTED, 1));
    assert_eq!(x.other_bans_in_force, 50);
    let (count, newest) = e.newest_bans_in_force(v, BanKind::Export, at, MAX_BANS_LISTED);
    assert_eq!(count, n);
    let listed: Vec<_> = x.bans_in_force.iter().filter(|b| b.kind == BanKind::Export).collect();
    assert_eq!(listed, newest.iter().collect::<Vec<_>>(), "the newest are listed");
    // Under the bound, the list is every ban in force, as before.
    let mut few = engine();
    apply(&mut few, &lines[..3].iter().map(String::as_str).collect::<Vec<_>>());
    let y = few.explain(v, at, 5);
    assert_eq!((y.bans_in_force.clone(), y.other_bans_in_force), (few.bans_in_force(v, at), 0));
}

#[test]
fn records_stay_compact() {
    // 1M events must fit in the memory goal (BENCHMARKS.md): keep the
    // per-event record small.
    assert!(size_of::<Decaying>() <= 40, "{}", size_of::<Decaying>());
    assert!(size_of::<Source>() <= 32, "{}", size_of::<Source>());
}

#[test]
fn the_last_lift_that_ended_a_ban_is_reported_and_a_lift_matching_nothing_is_not() {
    let mut e = engine();
    apply(
        &mut e,
        &[
            r#"{"id":"ban","type":"export_ban","occurred_at":"2025-04-15T00:00:00Z","vendors":["nvidia"],"products":["H20"]}"#,
            r#"{"id":"lift","type":"export_ban_lifted","occurred_at":"2025-07-15T00:00:00Z","vendors":["nvidia"],"products":["H20"],"title":"H20 sales may resume"}"#,
            r#"{"id":"again","type":"export_ban_lifted","occurred_at":"2025-08-01T00:00:00Z","vendors":["nvidia"],"products":["H20"]}"#,
            r#"{"id":"nothing","type":"export_ban_lifted","occurred_at":"2025-09-01T00:00:00Z","vendors":["nvidia"],"products":["B30A"]}"#,
        ],
    );
    let v = nvidia(&e);
    assert!(e.last_lifts(v, t("2025-07-14T00:00:00Z")).is_empty());
    let lifts = e.last_lifts(v, t("2025-12-01T00:00:00Z"));
    assert_eq!(lifts.len(), 1);
    assert_eq!(lifts[0].event_id, "lift", "the second lift of H20 and the B30A lift ended nothing");
    assert_eq!(lifts[0].title.as_deref(), Some("H20 sales may resume"));
    assert_eq!(lifts[0].product.as_deref(), Some("H20"));
}

#[test]
fn policy_changes_are_bans_imposed_and_lifts_that_ended_one_within_the_range() {
    let mut e = engine();
    apply(
        &mut e,
        &[
            r#"{"id":"old","type":"export_ban","occurred_at":"2023-10-17T00:00:00Z","vendors":["nvidia"],"products":["A800"]}"#,
            r#"{"id":"ban","type":"export_ban","occurred_at":"2025-04-15T00:00:00Z","vendors":["nvidia","amd"],"products":["MI308","H20"],"title":"Licence needed","source_url":"https://example.com/ban"}"#,
            r#"{"id":"pb","type":"purchase_ban","occurred_at":"2025-04-20T00:00:00Z","vendors":["nvidia"]}"#,
            r#"{"id":"lift","type":"export_ban_lifted","occurred_at":"2025-04-25T00:00:00Z","vendors":["nvidia"],"products":["H20"]}"#,
            r#"{"id":"nothing","type":"export_ban_lifted","occurred_at":"2025-04-26T00:00:00Z","vendors":["nvidia"],"products":["B30A"]}"#,
            r#"{"id":"future","type":"export_ban","occurred_at":"2025-06-01T00:00:00Z","vendors":["nvidia"]}"#,
        ],
    );
    let v = nvidia(&e);
    let changes = e.policy_changes(v, t("2025-04-01T00:00:00Z"), t("2025-05-01T00:00:00Z"));
    let seen: Vec<(&str, BanKind, bool)> = changes.iter().map(|c| (c.event_id.as_str(), c.kind, c.lifted)).collect();
    assert_eq!(
        seen,
        [("ban", BanKind::Export, false), ("pb", BanKind::Purchase, false), ("lift", BanKind::Export, true)],
        "not the old ban, not a lift that ended nothing, not what occurs after the time asked"
    );
    assert_eq!(changes[0].products, ["H20", "MI308"], "one change per event, its products sorted");
    assert_eq!(changes[0].title.as_deref(), Some("Licence needed"));
    assert_eq!(changes[0].source_url.as_deref(), Some("https://example.com/ban"));
    assert_eq!(changes[0].occurred_at, t("2025-04-15T00:00:00Z"));
    assert!(changes[1].products.is_empty(), "vendor-wide");
    let amd = e.catalog().lookup("amd").unwrap();
    assert_eq!(e.policy_changes(amd, t("2025-04-01T00:00:00Z"), t("2025-05-01T00:00:00Z")).len(), 1);
    // A ban and its lift at the same instant: the lift wins, and is news.
    apply(
        &mut e,
        &[
            r#"{"id":"b2","type":"purchase_ban","occurred_at":"2025-04-28T00:00:00Z","vendors":["intel"],"products":["X"]}"#,
            r#"{"id":"l2","type":"purchase_ban_lifted","occurred_at":"2025-04-28T00:00:00Z","vendors":["intel"],"products":["X"]}"#,
        ],
    );
    let intel = e.catalog().lookup("intel").unwrap();
    let lifted: Vec<_> = e
        .policy_changes(intel, t("2025-04-01T00:00:00Z"), t("2025-05-01T00:00:00Z"))
        .into_iter()
        .filter(|c| c.lifted)
        .collect();
    assert_eq!(lifted.len(), 1);
}

/// An event of `benches/memory/held.py`'s largest shape: every text at its
/// limit and 64 products of 64 characters never seen before.
fn largest_event(i: usize) -> String {
    let products: Vec<String> = (0..64).map(|p| format!("\"{:x<64}\"", format!("P{i}-{p}"))).collect();
    format!(
        r#"{{"id":"big-{i:09}","type":"export_ban","occurred_at":"2024-01-01T00:00:{:02}Z","vendors":["nvidia"],"products":[{}],"severity":0.5,"actor":"{}","title":"{}","source_url":"https://example.org/{}"}}"#,
        i % 60,
        products.join(","),
        "a".repeat(1024),
        "t".repeat(1024),
        "u".repeat(1000)
    )
}

/// The estimate against `benches/memory/held.py` (BENCHMARKS.md §8), which
/// measured the service's memory when ready, per event above an empty
/// file, for the same two shapes of event (2026-12-04, 100,000 events
/// each). The estimate leaves out spare capacity and the allocator's
/// overhead, and counts the products' ranks, which a process builds at its
/// first query after new products (not before it is ready, when held.py
/// reads its memory): it must come near the measurement, from below or a
/// little above.
#[test]
fn held_bytes_grow_with_each_event_and_estimate_the_measured_memory() {
    const TYPICAL_MEASURED: u64 = 216;
    const LARGEST_MEASURED: u64 = 7_462;
    let decoder = Decoder::new(Arc::new(Catalog::default()), Limits::default());
    let n = 20_000;
    let mut e = engine();
    assert_eq!(e.held_bytes(), 0);
    let mut g = crate::synthetic::Generator::new(7);
    let mut last = 0;
    for _ in 0..n {
        let line = g.event();
        if e.apply(&decoder.decode(line.as_bytes()).unwrap()) == Applied::Accepted {
            assert!(e.held_bytes() > last, "every event held costs something");
        }
        last = e.held_bytes();
    }
    let again = g.event();
    let event = decoder.decode(again.as_bytes()).unwrap();
    e.apply(&event);
    let before = e.held_bytes();
    e.apply(&event);
    assert_eq!(e.held_bytes(), before, "a duplicate holds nothing more");
    let typical = e.held_bytes() / e.stats().accepted;

    let mut e = engine();
    let n = 500;
    for i in 0..n {
        e.apply(&decoder.decode(largest_event(i).as_bytes()).unwrap());
    }
    let largest = e.held_bytes() / n as u64;
    let near = |measured: u64| measured / 2..=measured * 11 / 10;
    assert!(near(TYPICAL_MEASURED).contains(&typical), "typical: {typical} bytes an event");
    assert!(near(LARGEST_MEASURED).contains(&largest), "largest: {largest} bytes an event");
}
