//! The series that describe the scores, built for each scrape from one
//! reading of the board. Nothing is shared between scrapes, so two at once
//! never see each other's half-filled gauges, and `chiprisk_ready` always
//! says what the same text shows: a replica still rebuilding exports none
//! of these series (`chiprisk_ready 0` only).

use super::families::{self as F, Family};
use crate::catalog::VendorId;
use crate::engine::Engine;
use crate::event::{BanKind, Component, Span, Timestamp};
use prometheus::proto::MetricFamily;
use prometheus::{GaugeVec, IntGauge, IntGaugeVec, Registry};

/// Policy changes this old or younger are exported
/// (`chiprisk_policy_change_timestamp_seconds`): the longest age window an
/// alert rule may use. Older ones are history, not news.
pub const POLICY_CHANGE_HORIZON_DAYS: i64 = 30;

/// Most `chiprisk_vendor_ban_info` series per vendor and kind: the newest
/// bans in force. Products come from events, so a producer could otherwise
/// make one scrape as large as it likes; the rest are counted in
/// `chiprisk_vendor_ban_info_folded` (and every ban, exported or not, in
/// `chiprisk_vendor_bans_in_force`).
pub const MAX_BAN_SERIES: usize = 10;

/// Most `chiprisk_policy_change_timestamp_seconds` series per vendor: the
/// newest changes of the window; the rest are counted in
/// `chiprisk_policy_changes_folded`. Real policy news is a few changes a
/// month per vendor.
pub const MAX_POLICY_CHANGE_SERIES: usize = 10;

/// Every score series as of `at` (only `chiprisk_ready 0` unless `board`
/// is given, which it is once the scores are whole).
pub fn families(board: Option<&Engine>, at: Timestamp) -> Vec<MetricFamily> {
    let registry = Registry::new();
    let ready = IntGauge::with_opts(F::READY.opts()).expect("a valid metric");
    registry.register(Box::new(ready.clone())).expect("metric names are unique");
    let Some(engine) = board else { return registry.gather() };
    ready.set(1);
    let series = Series::register(&registry);
    let since = at.saturating_sub(Span::days(POLICY_CHANGE_HORIZON_DAYS));
    for vendor in engine.catalog().ids() {
        series.vendor(engine, vendor, since, at);
    }
    series.events_held.set(engine.stats().accepted as i64);
    series.held_bytes.set(i64::try_from(engine.held_bytes()).unwrap_or(i64::MAX));
    series.scored_at.set(at.as_unix_seconds());
    registry.gather()
}

/// The score families of one scrape, registered and empty.
struct Series {
    score: GaugeVec,
    component: GaugeVec,
    bans: IntGaugeVec,
    ban_info: GaugeVec,
    ban_folded: IntGaugeVec,
    lift_info: GaugeVec,
    changes: GaugeVec,
    changes_folded: IntGaugeVec,
    event_info: GaugeVec,
    last_event: GaugeVec,
    events_held: IntGauge,
    held_bytes: IntGauge,
    scored_at: prometheus::Gauge,
}

impl Series {
    fn register(registry: &Registry) -> Self {
        let add = |c: Box<dyn prometheus::core::Collector>| registry.register(c).expect("metric names are unique");
        let gauge = |f: &Family| {
            let g = GaugeVec::new(f.opts(), f.labels).expect("a valid metric");
            add(Box::new(g.clone()));
            g
        };
        let int_gauge = |f: &Family| {
            let g = IntGaugeVec::new(f.opts(), f.labels).expect("a valid metric");
            add(Box::new(g.clone()));
            g
        };
        let events_held = IntGauge::with_opts(F::ENGINE_EVENTS.opts()).expect("a valid metric");
        add(Box::new(events_held.clone()));
        let held_bytes = IntGauge::with_opts(F::ENGINE_HELD_BYTES.opts()).expect("a valid metric");
        add(Box::new(held_bytes.clone()));
        let scored_at = prometheus::Gauge::with_opts(F::SCORES_AS_OF.opts()).expect("a valid metric");
        add(Box::new(scored_at.clone()));
        Self {
            score: gauge(&F::VENDOR_RISK_SCORE),
            component: gauge(&F::VENDOR_RISK_COMPONENT_PRESSURE),
            bans: int_gauge(&F::VENDOR_BANS_IN_FORCE),
            ban_info: gauge(&F::VENDOR_BAN_INFO),
            ban_folded: int_gauge(&F::VENDOR_BAN_INFO_FOLDED),
            lift_info: gauge(&F::VENDOR_LAST_LIFT_INFO),
            changes: gauge(&F::POLICY_CHANGE_TIMESTAMP),
            changes_folded: int_gauge(&F::POLICY_CHANGES_FOLDED),
            event_info: gauge(&F::VENDOR_LAST_EVENT_INFO),
            last_event: gauge(&F::VENDOR_LAST_EVENT_TIMESTAMP),
            events_held,
            held_bytes,
            scored_at,
        }
    }

    /// One vendor's series. Bounded by [`MAX_BAN_SERIES`], one lift per
    /// kind and [`MAX_POLICY_CHANGE_SERIES`]: not by the event stream.
    fn vendor(&self, engine: &Engine, vendor: VendorId, since: Timestamp, at: Timestamp) {
        let id = &engine.catalog().get(vendor).id;
        let s = engine.score(vendor, at);
        self.score.with_label_values(&[id]).set(s.score);
        for c in Component::ALL {
            self.component.with_label_values(&[id, c.as_str()]).set(s.component(c));
        }
        for k in BanKind::ALL {
            self.bans_of_kind(engine, vendor, id, k, at);
        }
        for l in engine.last_lifts(vendor, at) {
            let product = l.product.as_deref().unwrap_or("all");
            let title = label_text(l.title.as_deref().unwrap_or(""));
            self.lift_info
                .with_label_values(&[id, l.kind.as_str(), product, &l.event_id, &title])
                .set(l.occurred_at.as_unix_seconds());
        }
        self.policy_changes(engine, vendor, id, since, at);
        if let Some((kind, event_id, title, t)) = engine.last_event(vendor, at) {
            self.last_event.with_label_values(&[id]).set(t.as_unix_seconds());
            let title = label_text(title.as_deref().unwrap_or(""));
            self.event_info.with_label_values(&[id, kind.as_str(), &event_id, &title]).set(t.as_unix_seconds());
        }
    }

    /// The newest bans in force of one kind; the engine holds no more than
    /// that to find them, however many are in force.
    fn bans_of_kind(&self, engine: &Engine, vendor: VendorId, id: &str, k: BanKind, at: Timestamp) {
        let (in_force, newest) = engine.newest_bans_in_force(vendor, k, at, MAX_BAN_SERIES);
        self.bans.with_label_values(&[id, k.as_str()]).set(in_force as i64);
        self.ban_folded.with_label_values(&[id, k.as_str()]).set(in_force.saturating_sub(MAX_BAN_SERIES) as i64);
        for b in &newest {
            let product = label_text(b.product.as_deref().unwrap_or("all"));
            let title = label_text(b.title.as_deref().unwrap_or(""));
            self.ban_info
                .with_label_values(&[id, b.kind.as_str(), &product, &b.event_id, &title])
                .set(b.since.as_unix_seconds());
        }
    }

    /// The newest policy changes within `since..=at`; the rest counted.
    fn policy_changes(&self, engine: &Engine, vendor: VendorId, id: &str, since: Timestamp, at: Timestamp) {
        let (changed, recent) = engine.newest_policy_changes(vendor, since, at, MAX_POLICY_CHANGE_SERIES);
        self.changes_folded.with_label_values(&[id]).set(changed.saturating_sub(MAX_POLICY_CHANGE_SERIES) as i64);
        for c in &recent {
            let change = if c.lifted { "lifted" } else { "imposed" };
            let product = if c.products.is_empty() { "all".to_owned() } else { c.products.join(", ") };
            let title = label_text(c.title.as_deref().unwrap_or(""));
            let url = label_text(c.source_url.as_deref().unwrap_or(""));
            self.changes
                .with_label_values(&[id, c.kind.as_str(), change, &label_text(&product), &c.event_id, &title, &url])
                .set(c.occurred_at.as_unix_seconds());
        }
    }
}

/// Event text for a label value: at most 200 characters (199 and an ellipsis).
fn label_text(s: &str) -> std::borrow::Cow<'_, str> {
    match s.char_indices().nth(199) {
        Some((i, _)) => format!("{}…", &s[..i]).into(),
        None => s.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::engine::ScoringModel;
    use crate::event::{Decoder, Limits};
    use std::sync::Arc;

    fn render(families: Vec<MetricFamily>) -> String {
        crate::telemetry::Metrics::new().render(families)
    }

    #[test]
    fn policy_changes_of_the_last_thirty_days_are_exported_with_their_source() {
        let mut engine = Engine::new(Arc::new(Catalog::default()), ScoringModel::default());
        let decoder = Decoder::new(engine.catalog().clone(), Limits::default());
        for line in [
            r#"{"id":"old","type":"export_ban","occurred_at":"2026-10-01T00:00:00Z","vendors":["nvidia"],"products":["H20"]}"#,
            r#"{"id":"new","type":"purchase_ban","occurred_at":"2026-11-20T00:00:00Z","vendors":["nvidia"],"title":"Stop buying","source_url":"https://example.com/a"}"#,
        ] {
            engine.apply(&decoder.decode(line.as_bytes()).unwrap());
        }
        let at = Timestamp::parse_rfc3339("2026-12-01T00:00:00Z").unwrap();
        let text = render(families(Some(&engine), at));
        let changes: Vec<&str> =
            text.lines().filter(|l| l.starts_with("chiprisk_policy_change_timestamp_seconds{")).collect();
        assert_eq!(
            changes,
            [
                r#"chiprisk_policy_change_timestamp_seconds{change="imposed",event_id="new",kind="purchase",product="all",source_url="https://example.com/a",title="Stop buying",vendor="nvidia"} 1795132800"#
            ],
            "61 days old is history; 11 days old is news"
        );
        assert!(text.contains("chiprisk_ready 1"));
    }

    /// Every family the process registers and every score family is in
    /// the table (`families::ALL`) with its type, and every family of the
    /// table is exported by a whole replica once the Kafka loop has
    /// recorded what it records (the memory limit aside).
    #[test]
    fn what_is_exported_is_what_the_family_table_says() {
        use crate::telemetry::families::{self, Shown, Type};
        let mut engine = Engine::new(Arc::new(Catalog::default()), ScoringModel::default());
        let decoder = Decoder::new(engine.catalog().clone(), Limits::default());
        for line in [
            r#"{"id":"b","type":"export_ban","occurred_at":"2026-11-20T00:00:00Z","vendors":["nvidia"]}"#,
            r#"{"id":"p","type":"purchase_ban","occurred_at":"2026-11-21T00:00:00Z","vendors":["nvidia"]}"#,
            r#"{"id":"l","type":"export_ban_lifted","occurred_at":"2026-11-22T00:00:00Z","vendors":["nvidia"]}"#,
        ] {
            engine.apply(&decoder.decode(line.as_bytes()).unwrap());
        }
        let metrics = crate::telemetry::Metrics::new();
        metrics.set_rebuild_left(Some(0));
        // What the Kafka loop records.
        let kafka = metrics.kafka();
        kafka.fetched_at(1.0);
        kafka.caught_up_at(1.0);
        kafka.message_timestamp(Some(1_000));
        kafka.set_lag("events", 0, 0);
        let text = metrics.render(families(Some(&engine), Timestamp::parse_rfc3339("2026-12-01T00:00:00Z").unwrap()));
        let mut exported = Vec::new();
        for line in text.lines().filter_map(|l| l.strip_prefix("# TYPE chiprisk_")) {
            let (name, kind) = line.split_once(' ').unwrap();
            let name = format!("chiprisk_{name}");
            let family = families::find(&name).unwrap_or_else(|| panic!("{name} is not in the family table"));
            let want = match family.kind {
                Type::Counter => "counter",
                Type::Gauge => "gauge",
                Type::Histogram => "histogram",
            };
            assert_eq!(kind, want, "{name}");
            exported.push(name);
        }
        // All but the memory limit, which only a container's cgroup sets.
        for f in families::ALL.iter().filter(|f| f.shown != Shown::MemoryLimit) {
            assert!(exported.iter().any(|n| n == f.name), "{} is not exported", f.name);
        }
    }

    /// A producer naming 256 products in each of 600 bans (the review's
    /// attack) gets the same number of ban and policy-change series as a
    /// handful of bans would: the newest within the bounds, the rest counted.
    #[test]
    fn series_stay_bounded_whatever_the_bans_name_and_the_rest_is_counted() {
        let mut engine = Engine::new(Arc::new(Catalog::default()), ScoringModel::default());
        let decoder = Decoder::new(engine.catalog().clone(), Limits::default());
        for i in 0..600 {
            let products: Vec<String> = (0..256).map(|p| format!("\"P{i}-{p}\"")).collect();
            let line = format!(
                r#"{{"id":"b{i}","type":"export_ban","occurred_at":"2026-11-{:02}T{:02}:{:02}:00Z","vendors":["nvidia","amd"],"products":[{}]}}"#,
                1 + i / 60,
                i % 24,
                i % 60,
                products.join(",")
            );
            engine.apply(&decoder.decode(line.as_bytes()).unwrap());
        }
        let at = Timestamp::parse_rfc3339("2026-12-01T00:00:00Z").unwrap();
        let text = render(families(Some(&engine), at));
        let count = |prefix: &str| text.lines().filter(|l| l.starts_with(prefix)).count();
        assert_eq!(count("chiprisk_vendor_ban_info{"), 2 * MAX_BAN_SERIES);
        assert_eq!(count("chiprisk_policy_change_timestamp_seconds{"), 2 * MAX_POLICY_CHANGE_SERIES);
        let all = 600 * 256;
        assert!(text.contains(&format!(r#"chiprisk_vendor_bans_in_force{{kind="export",vendor="nvidia"}} {all}"#)));
        let folded = all - MAX_BAN_SERIES;
        assert!(text.contains(&format!(r#"chiprisk_vendor_ban_info_folded{{kind="export",vendor="nvidia"}} {folded}"#)));
        let changes = 600 - MAX_POLICY_CHANGE_SERIES;
        assert!(text.contains(&format!(r#"chiprisk_policy_changes_folded{{vendor="amd"}} {changes}"#)), "{text}");
        // The newest ban is among those kept.
        assert!(text.contains(r#"event_id="b599""#));
        assert!(text.len() < 64 * 1024, "{} bytes", text.len());
    }

    #[test]
    fn a_board_still_rebuilding_exports_readiness_only() {
        let text = render(families(None, Timestamp::now()));
        assert!(text.contains("chiprisk_ready 0"));
        assert!(
            !text.contains("chiprisk_vendor_")
                && !text.contains("chiprisk_policy_")
                && !text.contains("chiprisk_engine_events")
        );
    }
}
