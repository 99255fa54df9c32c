//! History as OpenMetrics text, for `promtool tsdb create-blocks-from
//! openmetrics`: the live service's score series, as of each step of a past
//! range, with timestamps. Built from the same families a scrape exports
//! ([`super::scores::families`]), so names, help and labels are the same.

use prometheus::proto::{MetricFamily, MetricType};
use std::collections::BTreeMap;
use std::io::{self, Write};

/// A series' labels (sorted by name) and its samples, (Unix seconds,
/// value) in time order.
type Series = BTreeMap<Vec<(String, String)>, Vec<(i64, f64)>>;

/// Samples gathered step by step, per family.
#[derive(Default)]
pub struct Backfill {
    help: BTreeMap<String, String>,
    series: BTreeMap<String, Series>,
}

impl Backfill {
    /// Adds the backfilled families of one step, as of `unix_seconds`
    /// (steps must come in time order).
    pub fn add(&mut self, families: &[MetricFamily], unix_seconds: i64) {
        for f in families.iter().filter(|f| super::families::find(f.name()).is_some_and(|f| f.backfilled)) {
            self.help.entry(f.name().to_owned()).or_insert_with(|| f.help().to_owned());
            let series = self.series.entry(f.name().to_owned()).or_default();
            for m in f.get_metric() {
                let labels = m.get_label().iter().map(|l| (l.name().to_owned(), l.value().to_owned())).collect();
                let value = match f.get_field_type() {
                    MetricType::GAUGE => m.get_gauge().get_value(),
                    _ => continue,
                };
                series.entry(labels).or_default().push((unix_seconds, value));
            }
        }
    }

    /// Samples gathered so far.
    pub fn samples(&self) -> usize {
        self.series.values().flat_map(|s| s.values()).map(Vec::len).sum()
    }

    /// Writes everything as OpenMetrics, with `extra` labels (e.g. `job`)
    /// on every series, ending with `# EOF`.
    pub fn write(&self, out: &mut impl Write, extra: &[(String, String)]) -> io::Result<()> {
        for name in super::families::backfilled().map(|f| f.name) {
            let Some(series) = self.series.get(name) else { continue };
            writeln!(out, "# HELP {name} {}", escape(&self.help[name]))?;
            writeln!(out, "# TYPE {name} gauge")?;
            for (labels, samples) in series {
                let mut all: Vec<&(String, String)> = extra.iter().chain(labels).collect();
                all.sort();
                let labels: Vec<String> = all.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
                let labels = labels.join(",");
                for (t, v) in samples {
                    // `+ 0.0` turns a negative zero into zero: never `-0`.
                    writeln!(out, "{name}{{{labels}}} {} {t}", v + 0.0)?;
                }
            }
        }
        writeln!(out, "# EOF")
    }
}

/// OpenMetrics escaping, for label values and help text alike: backslash,
/// newline and double quote.
fn escape(s: &str) -> String {
    let mut e = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => e.push_str("\\\\"),
            '\n' => e.push_str("\\n"),
            '"' => e.push_str("\\\""),
            c => e.push(c),
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::engine::{Engine, ScoringModel};
    use crate::event::{Decoder, Limits, Timestamp};
    use std::sync::Arc;

    #[test]
    fn each_series_lists_its_samples_in_time_order_with_the_extra_labels() {
        let mut engine = Engine::new(Arc::new(Catalog::default()), ScoringModel::default());
        let decoder = Decoder::new(engine.catalog().clone(), Limits::default());
        let ban = r#"{"id":"b","type":"export_ban","occurred_at":"2025-04-15T00:00:00Z","vendors":["nvidia"],"products":["H20"],"title":"A \"quoted\" title"}"#;
        engine.apply(&decoder.decode(ban.as_bytes()).unwrap());
        let mut backfill = Backfill::default();
        for day in ["2025-04-14", "2025-04-16"] {
            let at = Timestamp::parse_rfc3339(&format!("{day}T00:00:00Z")).unwrap();
            backfill.add(&crate::telemetry::score_families(Some(&engine), at), at.whole_unix_seconds());
        }
        let mut out = Vec::new();
        backfill.write(&mut out, &[("job".into(), "chiprisk".into())]).unwrap();
        let text = String::from_utf8(out).unwrap();
        let nvidia: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("chiprisk_vendor_risk_score{job=\"chiprisk\",vendor=\"nvidia\"}"))
            .collect();
        assert_eq!(nvidia.len(), 2, "{text}");
        assert!(nvidia[0].ends_with(" 0 1744588800") && nvidia[1].ends_with(" 1744761600"), "{nvidia:?}");
        assert!(text.contains(r#"title="A \"quoted\" title""#), "{text}");
        assert!(!text.contains("chiprisk_ready") && !text.contains("chiprisk_engine_events"), "not as of the past");
        assert!(text.ends_with("# EOF\n"));
        let families: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).collect();
        let mut sorted = families.clone();
        sorted.dedup();
        assert_eq!(families, sorted, "each family once, its samples together");
    }

    #[test]
    fn a_negative_zero_is_written_as_zero() {
        let registry = prometheus::Registry::new();
        let g = prometheus::GaugeVec::new(
            prometheus::Opts::new("chiprisk_vendor_risk_component_pressure", "help"),
            &["vendor"],
        )
        .unwrap();
        registry.register(Box::new(g.clone())).unwrap();
        g.with_label_values(&["huawei"]).set(-0.0);
        g.with_label_values(&["nvidia"]).set(-0.25);
        let mut backfill = Backfill::default();
        backfill.add(&registry.gather(), 1_744_588_800);
        let mut out = Vec::new();
        backfill.write(&mut out, &[]).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("{vendor=\"huawei\"} 0 1744588800\n"), "{text}");
        assert!(text.contains("{vendor=\"nvidia\"} -0.25 1744588800\n"), "{text}");
    }
}
