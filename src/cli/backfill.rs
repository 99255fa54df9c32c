//! `chiprisk backfill`: the scores of a past range, as OpenMetrics for
//! `promtool tsdb create-blocks-from openmetrics`, so that dashboards show
//! the history from their first day.

use super::exit;
use super::replay::{print_summary, read_lines};
use crate::config::Settings;
use crate::engine::Engine;
use crate::event::{parse_step, parse_when, Decoder, Span, Timestamp};
use crate::pipeline;
use crate::telemetry::{families, score_families, Backfill};
use clap::Args;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::Arc;

/// Most steps one run writes (four years hourly is 35,064).
const MAX_STEPS: i64 = 100_000;

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// JSON-lines file of events; `-` for stdin.
    pub file: PathBuf,
    /// First time to score: a date (2022-01-01), RFC 3339, or `now`.
    #[arg(long, value_name = "TIME", value_parser = parse_when)]
    pub from: Timestamp,
    /// Last time to score (included if a step lands on it).
    #[arg(long, value_name = "TIME", value_parser = parse_when, default_value = "now")]
    pub to: Timestamp,
    /// Time between two samples: `1d`, `6h`, `15m`.
    #[arg(long, value_name = "DURATION", value_parser = parse_step, default_value = "1d")]
    pub step: Span,
    /// A label on every series, as Prometheus would add it when scraping
    /// (`--label namespace=risk`). `job` is `chiprisk` unless given.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
}

/// Runs `backfill`; returns the exit code.
pub fn backfill(settings: &Settings, args: &BackfillArgs) -> anyhow::Result<u8> {
    let (from, to, step) = (args.from.whole_unix_seconds(), args.to.whole_unix_seconds(), args.step.whole_seconds());
    if to < from {
        eprintln!("chiprisk: --to is before --from");
        return Ok(exit::USAGE);
    }
    if (to - from) / step >= MAX_STEPS {
        eprintln!(
            "chiprisk: {} steps from --from to --to; at most {MAX_STEPS}: use a longer --step",
            (to - from) / step + 1
        );
        return Ok(exit::USAGE);
    }
    let catalog = Arc::new(settings.catalog()?);
    let decoder = Decoder::new(catalog.clone(), settings.limits.clone());
    let mut engine = Engine::new(catalog, settings.scoring.clone());
    let apply = |bytes: &[u8]| pipeline::process(&decoder, &mut engine, bytes);
    let summary = match read_lines(&args.file, &decoder, apply) {
        Ok(summary) => summary,
        Err(code) => return Ok(code),
    };
    let (series, steps) = sample(&engine, (from..=to).step_by(step as usize));
    let mut labels = args.labels.clone();
    if let Some(problem) = label_problem(&labels) {
        eprintln!("chiprisk: --label {problem}");
        return Ok(exit::USAGE);
    }
    if !labels.iter().any(|(k, _)| k == "job") {
        labels.push(("job".into(), "chiprisk".into()));
    }
    let mut out = BufWriter::new(io::stdout().lock());
    match series.write(&mut out, &labels).and_then(|()| out.flush()) {
        // The reader stopped early (`| head`): nothing to say.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(exit::FAILURE),
        written => written?,
    }
    print_summary(&summary);
    eprintln!("chiprisk: {steps} steps, {} samples", series.samples());
    Ok(0)
}

/// The backfilled series at each step (Unix seconds), and how many steps:
/// each as of its time, as the live service would have exported it then
/// (the engine answers every family as of the time asked, the vendor's
/// last event included).
fn sample(engine: &Engine, steps: impl Iterator<Item = i64>) -> (Backfill, u64) {
    let mut series = Backfill::default();
    let mut count = 0;
    for t in steps {
        series.add(&score_families(Some(engine), Timestamp::from_unix_seconds(t)), t);
        count += 1;
    }
    (series, count)
}

/// Why these `--label`s cannot go on the series, if they cannot.
fn label_problem(labels: &[(String, String)]) -> Option<String> {
    for (i, (k, _)) in labels.iter().enumerate() {
        // Labels the series carry themselves, which `--label` cannot set.
        if families::backfilled().any(|f| f.labels.contains(&k.as_str())) {
            return Some(format!("{k}: the series carry this label themselves"));
        }
        if labels[..i].iter().any(|(other, _)| other == k) {
            return Some(format!("{k}: given twice"));
        }
    }
    None
}

/// `KEY=VALUE`, KEY a Prometheus label name.
fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or_else(|| format!("{s:?} is not KEY=VALUE"))?;
    let name_ok = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !k.starts_with("__");
    if !name_ok {
        return Err(format!("{k:?} is not a label name"));
    }
    Ok((k.to_owned(), v.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;
    use crate::engine::Applied;
    use crate::engine::ScoringModel;
    use crate::event::Limits;
    use std::collections::BTreeMap;

    const LAST_EVENT: &str = "chiprisk_vendor_last_event_";

    fn text(history: &Backfill) -> String {
        let mut out = Vec::new();
        history.write(&mut out, &[]).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The bundled history, backfilled every 30 days from 2019 to 2026:
    /// every series as the whole history says as of each step, and the last
    /// event as of each step, not the latest of all.
    #[test]
    fn each_step_is_as_of_its_time_the_last_event_too() {
        let decoder = Decoder::new(Arc::new(Catalog::default()), Limits::default());
        let mut whole = Engine::new(decoder.catalog().clone(), ScoringModel::default());
        let lines: Vec<Vec<u8>> = crate::source::EMBEDDED_EVENTS
            .lines()
            .filter(|l| decoder.decode(l.as_bytes()).is_ok_and(|e| whole.apply(&e) == Applied::Accepted))
            .map(|l| l.as_bytes().to_vec())
            .collect();
        let steps = || (1_546_300_800..=1_796_083_200).step_by(30 * 86_400);
        let (sampled, count) = sample(&whole, steps());
        assert_eq!(count, steps().count() as u64);
        let mut reference = Backfill::default();
        for t in steps() {
            reference.add(&score_families(Some(&whole), Timestamp::from_unix_seconds(t)), t);
        }
        let (sampled, reference) = (text(&sampled), text(&reference));
        let others = |text: &str| -> Vec<String> {
            text.lines().filter(|l| !l.contains(LAST_EVENT)).map(str::to_owned).collect()
        };
        assert_eq!(others(&sampled), others(&reference), "every other series as the whole history says");
        assert!(sampled.contains("chiprisk_vendor_ban_info{") && sampled.contains("chiprisk_vendor_risk_score{"));

        // The last event's time, by vendor and step, from the events themselves.
        let mut expected = BTreeMap::new();
        for t in steps() {
            for vendor in whole.catalog().ids() {
                let latest = lines
                    .iter()
                    .map(|l| decoder.decode(l).unwrap())
                    .filter(|e| e.vendors.iter().any(|v| v == vendor) && e.occurred_at.as_unix_seconds() <= t as f64)
                    .max_by(|a, b| {
                        (a.occurred_at, std::cmp::Reverse(&a.id)).cmp(&(b.occurred_at, std::cmp::Reverse(&b.id)))
                    });
                if let Some(e) = latest {
                    let id = whole.catalog().get(vendor).id.clone();
                    expected.insert((id, t), (e.occurred_at.as_unix_seconds(), e.id.to_string()));
                }
            }
        }
        let sample = |line: &str| -> (String, i64, f64) {
            let vendor = line.split("vendor=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
            let mut words = line.rsplit(' ');
            let t = words.next().unwrap().parse().unwrap();
            (vendor, t, words.next().unwrap().parse().unwrap())
        };
        let times: BTreeMap<(String, i64), f64> = sampled
            .lines()
            .filter(|l| l.starts_with("chiprisk_vendor_last_event_timestamp_seconds{"))
            .map(|l| {
                let (vendor, t, v) = sample(l);
                ((vendor, t), v)
            })
            .collect();
        let expected_times: BTreeMap<(String, i64), f64> = expected.iter().map(|(k, (v, _))| (k.clone(), *v)).collect();
        assert_eq!(times, expected_times);
        for l in sampled.lines().filter(|l| l.starts_with("chiprisk_vendor_last_event_info{")) {
            let (vendor, t, v) = sample(l);
            let (at, id) = &expected[&(vendor, t)];
            assert!(v == *at && l.contains(&format!("event_id=\"{id}\"")), "{l}: expected {id} at {at}");
        }
        assert_eq!(sampled.lines().filter(|l| l.starts_with("chiprisk_vendor_last_event_info{")).count(), times.len());
        // Past the last event, the same as the live service exports.
        let last = |text: &str| -> Vec<String> {
            let end = format!(" {}", steps().last().unwrap());
            text.lines().filter(|l| l.contains(LAST_EVENT) && l.ends_with(&end)).map(str::to_owned).collect()
        };
        assert_eq!(last(&sampled), last(&reference));
        let nvidia: std::collections::BTreeSet<u64> =
            times.iter().filter(|((v, _), _)| v == "nvidia").map(|(_, t)| t.to_bits()).collect();
        assert!(nvidia.len() > 10, "NVIDIA's last event moves with the steps: {nvidia:?}");
    }

    #[test]
    fn labels_parse_or_say_why_not() {
        assert_eq!(parse_label("namespace=risk"), Ok(("namespace".into(), "risk".into())));
        assert!(parse_label("__name__=x").is_err() && parse_label("a-b=x").is_err() && parse_label("job").is_err());
        let l = |k: &str| (k.to_owned(), "x".to_owned());
        assert_eq!(label_problem(&[l("namespace"), l("service")]), None);
        assert!(label_problem(&[l("vendor")]).unwrap().contains("themselves"));
        // `type` is on chiprisk_vendor_last_event_info, a backfilled family.
        assert!(label_problem(&[l("type")]).unwrap().contains("themselves"));
        assert!(label_problem(&[l("job"), l("job")]).unwrap().contains("twice"));
    }
}
