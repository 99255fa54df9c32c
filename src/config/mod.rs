//! Typed, layered configuration: built-in defaults, then an optional file
//! (`--config`, TOML or YAML), then `CHIPRISK__SECTION__KEY` environment
//! variables. Unknown keys and invalid values stop start-up (exit code 78)
//! with a message naming the key. The field comments below are the
//! configuration reference; `chiprisk config` prints the effective values.

use crate::catalog::{default_vendors, Catalog, Vendor};
use crate::engine::ScoringModel;
use crate::event::Limits;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod duration;
mod http;
mod kafka;

pub use http::{HttpSettings, Secret};
pub use kafka::{librdkafka_name, KafkaSettings};

/// Everything chiprisk can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub http: HttpSettings,
    pub source: SourceSettings,
    pub log: LogSettings,
    pub explain: ExplainSettings,
    /// Kafka source and sinks; off unless `kafka.brokers` is set.
    pub kafka: KafkaSettings,
    /// Bounds on one event (bytes, array lengths, string lengths).
    pub limits: Limits,
    /// Weights, default severities and half-lives of the scoring model.
    pub scoring: ScoringModel,
    /// The vendor catalog: id, display name, origin (ISO country code).
    pub vendors: Vec<Vendor>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSettings {
    /// JSON-lines file of events that `chiprisk run` reads and follows for
    /// appended lines. Unset: the bundled history (`data/history.jsonl`).
    pub file: Option<PathBuf>,
    /// How often to look for appended lines (milliseconds, or `"1s"`).
    #[serde(with = "duration::millis")]
    pub poll_interval_ms: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` (for terminals) or `json` (for log collectors).
    pub format: LogFormat,
    /// Default filter (`info`, `chiprisk=debug`, ...); `CHIPRISK_LOG` or
    /// `RUST_LOG` override it.
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainSettings {
    /// Most contributions listed per vendor in explanations; the rest are
    /// summed under `other_contributions`.
    pub max_contributions: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            http: HttpSettings::default(),
            source: SourceSettings { file: None, poll_interval_ms: Duration::from_millis(500) },
            log: LogSettings { format: LogFormat::Text, level: "info".into() },
            explain: ExplainSettings { max_contributions: 25 },
            kafka: KafkaSettings::default(),
            limits: Limits::default(),
            scoring: ScoringModel::default(),
            vendors: default_vendors(),
        }
    }
}

/// Refuses a TOML file that does not parse, naming the file, line and
/// column but not the text there: the config crate's own message quotes
/// the offending line, which may hold a password. (YAML errors carry only
/// positions.)
fn check_syntax(path: &Path) -> Result<(), ConfigError> {
    if path.extension().is_none_or(|e| e != "toml") {
        return Ok(());
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("config file {}: cannot be read: {e}", path.display())))?;
    let Err(e) = text.parse::<toml::Table>() else { return Ok(()) };
    let at = e.span().map_or(0, |s| s.start).min(text.len());
    let line = text[..at].matches('\n').count() + 1;
    let column = text[..at].rfind('\n').map_or(at, |nl| at - nl - 1) + 1;
    Err(ConfigError(format!(
        "config file {}: TOML syntax error at line {line}, column {column}: {}",
        path.display(),
        e.message()
    )))
}

/// Configuration that cannot be used. Exit code 78 (EX_CONFIG).
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Settings {
    /// Loads defaults, then `file` if given, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// As [`Settings::load`], with the environment given (for tests).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let defaults = config::Config::try_from(&Settings::default()).map_err(|e| ConfigError(e.to_string()))?;
        let mut builder = config::Config::builder().add_source(defaults);
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(format!("config file {} does not exist", path.display())));
            }
            check_syntax(path)?;
            builder = builder.add_source(config::File::from(path));
        }
        let env: config::Map<String, String> = env.into_iter().filter(|(k, _)| k.starts_with("CHIPRISK__")).collect();
        builder = builder.add_source(
            config::Environment::with_prefix("CHIPRISK")
                .prefix_separator("__")
                .separator("__")
                // Values stay strings until a setting's type asks for a
                // number or a bool: a token "007" or a password "1e3"
                // must not become 7 or 1000.
                .try_parsing(false)
                .source(Some(env)),
        );
        let settings: Settings =
            builder.build().and_then(|c| c.try_deserialize()).map_err(|e| ConfigError(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Cross-field checks that serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.http.validate().map_err(ConfigError)?;
        if !(1..=60_000).contains(&self.source.poll_interval_ms.as_millis()) {
            return Err(ConfigError("source.poll_interval_ms must be within 1..=60000".into()));
        }
        if self.explain.max_contributions > 10_000 {
            return Err(ConfigError("explain.max_contributions must be at most 10000".into()));
        }
        self.limits.validate().map_err(ConfigError)?;
        self.kafka.validate().map_err(ConfigError)?;
        self.scoring.validate().map_err(ConfigError)?;
        self.catalog()?;
        Ok(())
    }

    /// The vendor catalog these settings describe.
    pub fn catalog(&self) -> Result<Catalog, ConfigError> {
        Catalog::new(self.vendors.clone()).map_err(|e| ConfigError(format!("vendors: {e}")))
    }

    /// The effective configuration as TOML, for `chiprisk config`, with
    /// secrets redacted.
    pub fn to_toml(&self) -> String {
        let mut printable = self.clone();
        printable.kafka = self.kafka.redacted();
        printable.http = self.http.redacted();
        toml::to_string_pretty(&printable).expect("settings serialize to TOML")
    }
}

#[cfg(test)]
mod tests;
