//! The command line: `run`, `replay`, `validate`, `config`.

mod backfill;
mod publish;
mod replay;
mod schema;
mod table;

pub use backfill::{backfill, BackfillArgs};
pub use publish::{publish, PublishArgs};
pub use replay::{replay, validate, ReplayArgs, ValidateArgs};
pub use schema::EVENT_SCHEMA;

use crate::config::LogFormat;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// `chiprisk --version`: the crate version and the git revision built.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("CHIPRISK_GIT_REVISION"), ")");

/// Exit codes beyond 0 (success) and 2 (usage, from clap).
pub mod exit {
    /// `--strict` and some events were rejected; or an I/O failure.
    pub const FAILURE: u8 = 1;
    /// The input file cannot be opened (EX_NOINPUT).
    pub const NO_INPUT: u8 = 66;
    /// The configuration is invalid (EX_CONFIG).
    pub const CONFIG: u8 = 78;
    /// The arguments are valid alone but not together (EX_USAGE).
    pub const USAGE: u8 = 64;
    /// The Kafka brokers cannot be reached (EX_UNAVAILABLE).
    pub const UNAVAILABLE: u8 = 69;
}

/// China-market risk scores for AI chip vendors, from policy and market events.
#[derive(Debug, Parser)]
#[command(name = "chiprisk", version = VERSION, about, propagate_version = true)]
pub struct Cli {
    /// Configuration file (TOML or YAML), layered over the defaults and
    /// under CHIPRISK__SECTION__KEY environment variables.
    #[arg(long, global = true, env = "CHIPRISK_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log format (overrides log.format).
    #[arg(long, global = true, env = "CHIPRISK_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<LogFormatArg>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(a: LogFormatArg) -> Self {
        match a {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve scores over HTTP (metrics, API, status page) from an event
    /// file that is followed for new lines; with no file, from the bundled
    /// example scenario. The default command.
    Run {
        /// JSON-lines event file (overrides source.file).
        #[arg(long, value_name = "FILE")]
        events: Option<PathBuf>,
    },
    /// Score a JSON-lines event file as of a time and print the scores.
    Replay(ReplayArgs),
    /// Check a JSON-lines event file without scoring it.
    Validate(ValidateArgs),
    /// Validate events and produce the accepted ones to the events topic,
    /// keyed by id.
    Publish(PublishArgs),
    /// Print the JSON Schema of events (schema v1).
    Schema,
    /// Write the scores of a past range as OpenMetrics, for
    /// `promtool tsdb create-blocks-from openmetrics`.
    Backfill(BackfillArgs),
    /// Print the effective configuration (TOML).
    Config,
}
