//! `chiprisk backfill`: the scores of a past range, as OpenMetrics for
//! `promtool tsdb create-blocks-from openmetrics`, so that dashboards show
//! the history from their first day.

use super::exit;
use super::replay::{for_each_line, print_summary};
use crate::config::Settings;
use crate::engine::Engine;
use crate::event::{parse_step, parse_when, Decoder, Timestamp};
use crate::pipeline::{self, Summary};
use crate::telemetry::{score_families, Backfill};
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
    pub step: i64,
    /// A label on every series, as Prometheus would add it when scraping
    /// (`--label namespace=risk`). `job` is `chiprisk` unless given.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
}

/// Runs `backfill`; returns the exit code.
pub fn backfill(settings: &Settings, args: &BackfillArgs) -> anyhow::Result<u8> {
    let (from, to, step) = (args.from.nanos() / 1_000_000_000, args.to.nanos() / 1_000_000_000, args.step);
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
    let mut summary = Summary::default();
    if let Some(code) =
        for_each_line(&args.file, &decoder, |bytes| pipeline::process(&decoder, &mut engine, bytes), &mut summary)
    {
        return Ok(code);
    }
    let mut history = Backfill::default();
    let mut steps = 0;
    for t in (from..=to).step_by(step as usize) {
        history.add(&score_families(Some(&engine), Timestamp::from_nanos(t * 1_000_000_000)), t);
        steps += 1;
    }
    let mut labels = args.labels.clone();
    if let Some(problem) = label_problem(&labels) {
        eprintln!("chiprisk: --label {problem}");
        return Ok(exit::USAGE);
    }
    if !labels.iter().any(|(k, _)| k == "job") {
        labels.push(("job".into(), "chiprisk".into()));
    }
    let mut out = BufWriter::new(io::stdout().lock());
    match history.write(&mut out, &labels).and_then(|()| out.flush()) {
        // The reader stopped early (`| head`): nothing to say.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(exit::FAILURE),
        written => written?,
    }
    print_summary(&summary);
    eprintln!("chiprisk: {steps} steps, {} samples", history.samples());
    Ok(0)
}

/// Labels the series carry themselves, which `--label` cannot set.
const OWN_LABELS: [&str; 8] = ["vendor", "component", "kind", "change", "product", "event_id", "title", "source_url"];

/// Why these `--label`s cannot go on the series, if they cannot.
fn label_problem(labels: &[(String, String)]) -> Option<String> {
    for (i, (k, _)) in labels.iter().enumerate() {
        if OWN_LABELS.contains(&k.as_str()) {
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

    #[test]
    fn labels_parse_or_say_why_not() {
        assert_eq!(parse_label("namespace=risk"), Ok(("namespace".into(), "risk".into())));
        assert!(parse_label("__name__=x").is_err() && parse_label("a-b=x").is_err() && parse_label("job").is_err());
        let l = |k: &str| (k.to_owned(), "x".to_owned());
        assert_eq!(label_problem(&[l("namespace"), l("service")]), None);
        assert!(label_problem(&[l("vendor")]).unwrap().contains("themselves"));
        assert!(label_problem(&[l("job"), l("job")]).unwrap().contains("twice"));
    }
}
