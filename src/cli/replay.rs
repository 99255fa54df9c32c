//! `chiprisk replay` and `chiprisk validate`: read a JSON-lines file (or
//! stdin), report bad lines as `FILE:LINE: reason: message` on stderr, and
//! go on.

use super::{exit, table};
use crate::config::Settings;
use crate::engine::{Applied, Engine};
use crate::event::{Decoder, Rejection, Timestamp};
use crate::pipeline::{self, Outcome, Summary};
use crate::report::ScoresReport;
use crate::source::{self, Sink};
use clap::{Args, ValueEnum};
use std::collections::HashSet;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// JSON-lines file of events; `-` for stdin.
    pub file: PathBuf,
    /// Score as of this time (RFC 3339); events after it do not count.
    #[arg(long, value_name = "RFC3339", default_value_t = Timestamp::now(), hide_default_value = true)]
    pub at: Timestamp,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// With the table: also list each vendor's bans and largest contributions.
    #[arg(long)]
    pub explain: bool,
    /// Exit with status 1 if any event was rejected.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// JSON-lines file of events; `-` for stdin.
    pub file: PathBuf,
}

/// Runs `replay`; returns the exit code.
pub fn replay(settings: &Settings, args: &ReplayArgs) -> anyhow::Result<u8> {
    let catalog = Arc::new(settings.catalog()?);
    let decoder = Decoder::new(catalog.clone(), settings.limits.clone());
    let mut engine = Engine::new(catalog, settings.scoring.clone());
    let step = |bytes: &[u8]| pipeline::process(&decoder, &mut engine, bytes);
    let summary = match read_lines(&args.file, &decoder, step) {
        Ok(summary) => summary,
        Err(code) => return Ok(code),
    };
    let report = ScoresReport::build(&engine, args.at, settings.explain.max_contributions, summary);
    let mut out = BufWriter::new(io::stdout().lock());
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        Format::Table => table::write(&mut out, &report, args.explain)?,
    }
    out.flush()?;
    print_summary(&summary);
    Ok(if args.strict && summary.rejected > 0 { exit::FAILURE } else { 0 })
}

/// Runs `validate`; returns the exit code (1 if anything was rejected).
pub fn validate(settings: &Settings, args: &ValidateArgs) -> anyhow::Result<u8> {
    let catalog = Arc::new(settings.catalog()?);
    let decoder = Decoder::new(catalog, settings.limits.clone());
    let mut seen = HashSet::new();
    let check = |bytes: &[u8]| match decoder.decode(bytes) {
        Ok(e) => Outcome::Applied {
            kind: e.kind,
            applied: if seen.insert(e.id.into_owned()) { Applied::Accepted } else { Applied::Duplicate },
        },
        Err(r) => Outcome::Rejected(r),
    };
    let summary = match read_lines(&args.file, &decoder, check) {
        Ok(summary) => summary,
        Err(code) => return Ok(code),
    };
    print_summary(&summary);
    Ok(if summary.rejected > 0 { exit::FAILURE } else { 0 })
}

/// Reads the file (or stdin) line by line through `step`, reporting
/// rejections on stderr. Returns the totals, or an exit code if the input
/// could not be read.
pub(super) fn read_lines(file: &Path, decoder: &Decoder, step: impl FnMut(&[u8]) -> Outcome) -> Result<Summary, u8> {
    let name = file.display().to_string();
    let mut input: Box<dyn Read> = if name == "-" {
        Box::new(io::stdin().lock())
    } else {
        match std::fs::File::open(file) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("chiprisk: cannot open {name}: {e}");
                return Err(exit::NO_INPUT);
            }
        }
    };
    let stderr = io::stderr();
    let mut err = BufWriter::new(stderr.lock());
    let report = |line: String| {
        let _ = writeln!(err, "{line}");
    };
    let mut tally = Tally::new(&name, step, report);
    let read = source::ingest(&mut input, decoder.limits().max_event_bytes, &mut tally);
    let summary = tally.summary;
    let _ = err.flush();
    match read {
        Ok(()) => Ok(summary),
        Err(e) => {
            eprintln!("chiprisk: cannot read {name}: {e}");
            Err(exit::FAILURE)
        }
    }
}

/// The command line's [`Sink`]: each line through `step`, counted in
/// `summary`; each rejection handed to `report` as `NAME:LINE: reason:
/// message`.
pub(super) struct Tally<'a, S, R> {
    name: &'a str,
    step: S,
    report: R,
    pub summary: Summary,
}

impl<'a, S: FnMut(&[u8]) -> Outcome, R: FnMut(String)> Tally<'a, S, R> {
    pub fn new(name: &'a str, step: S, report: R) -> Self {
        Self { name, step, report, summary: Summary::default() }
    }
}

impl<S: FnMut(&[u8]) -> Outcome, R: FnMut(String)> Sink for Tally<'_, S, R> {
    fn event(&mut self, bytes: &[u8]) -> Outcome {
        let outcome = (self.step)(bytes);
        self.summary.count(&outcome);
        outcome
    }

    fn too_long(&mut self, rejection: Rejection) -> Outcome {
        let outcome = Outcome::Rejected(rejection);
        self.summary.count(&outcome);
        outcome
    }

    fn rejected(&mut self, line_no: u64, r: &Rejection) {
        (self.report)(format!("{}:{line_no}: {}: {}", self.name, r.reason, r.message));
    }
}

pub(super) fn print_summary(s: &Summary) {
    eprintln!("chiprisk: {} accepted, {} duplicates, {} rejected", s.accepted, s.duplicates, s.rejected);
}
