//! `chiprisk replay` and `chiprisk validate`: read a JSON-lines file (or
//! stdin), report bad lines as `FILE:LINE: reason: message` on stderr, and
//! go on.

use super::{exit, table};
use crate::config::Settings;
use crate::engine::Engine;
use crate::event::{Decoder, Timestamp};
use crate::pipeline::{self, Outcome, Summary};
use crate::report::ScoresReport;
use crate::source::{Line, LineSplitter};
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
    let mut summary = Summary::default();
    let read =
        for_each_line(&args.file, &decoder, |bytes| pipeline::process(&decoder, &mut engine, bytes), &mut summary);
    if let Some(code) = read {
        return Ok(code);
    }
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
    let mut summary = Summary::default();
    let check = |bytes: &[u8]| match decoder.decode(bytes) {
        Ok(e) => Outcome::Applied {
            kind: e.kind,
            applied: if seen.insert(e.id.into_owned()) {
                crate::engine::Applied::Accepted
            } else {
                crate::engine::Applied::Duplicate
            },
        },
        Err(r) => Outcome::Rejected(r),
    };
    if let Some(code) = for_each_line(&args.file, &decoder, check, &mut summary) {
        return Ok(code);
    }
    print_summary(&summary);
    Ok(if summary.rejected > 0 { exit::FAILURE } else { 0 })
}

/// Reads the file line by line through `step`, reporting rejections on
/// stderr. Returns an exit code if the input could not be read.
pub(super) fn for_each_line(
    file: &Path,
    decoder: &Decoder,
    step: impl FnMut(&[u8]) -> Outcome,
    summary: &mut Summary,
) -> Option<u8> {
    let name = file.display().to_string();
    let mut input: Box<dyn Read> = if name == "-" {
        Box::new(io::stdin().lock())
    } else {
        match std::fs::File::open(file) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("chiprisk: cannot open {name}: {e}");
                return Some(exit::NO_INPUT);
            }
        }
    };
    let stderr = io::stderr();
    let mut err = BufWriter::new(stderr.lock());
    let read = each_line(&name, &mut input, decoder, step, summary, |line| {
        let _ = writeln!(err, "{line}");
    });
    let _ = err.flush();
    match read {
        Ok(()) => None,
        Err(e) => {
            eprintln!("chiprisk: cannot read {name}: {e}");
            Some(exit::FAILURE)
        }
    }
}

/// Every line of `input` through `step`, counted in `summary`; each
/// rejection handed to `report` as `NAME:LINE: reason: message`.
pub(super) fn each_line(
    name: &str,
    input: &mut dyn Read,
    decoder: &Decoder,
    mut step: impl FnMut(&[u8]) -> Outcome,
    summary: &mut Summary,
    mut report: impl FnMut(String),
) -> io::Result<()> {
    let limit = decoder.limits().max_event_bytes;
    let mut splitter = LineSplitter::new(limit);
    let mut on_line = |line_no: u64, line: Line<'_>| {
        let outcome = match line {
            Line::Text(bytes) => step(bytes),
            Line::TooLong(len) => Outcome::Rejected(pipeline::too_large(len, limit)),
        };
        if let Outcome::Rejected(r) = &outcome {
            report(format!("{name}:{line_no}: {}: {}", r.reason, r.message));
        }
        summary.count(&outcome);
    };
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => splitter.push(&buf[..n], &mut on_line),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    splitter.finish(&mut on_line);
    Ok(())
}

pub(super) fn print_summary(s: &Summary) {
    eprintln!("chiprisk: {} accepted, {} duplicates, {} rejected", s.accepted, s.duplicates, s.rejected);
}
