//! `tracing` output: readable text on a terminal, or JSON lines. The level
//! comes from `CHIPRISK_LOG`, then `RUST_LOG`, then `log.level`.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber, writing to stderr. Safe to call twice
/// (the second call does nothing), which tests rely on.
pub fn init_logging(format: LogFormat, default_level: &str) {
    let filter = std::env::var("CHIPRISK_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::try_new(default_level).unwrap_or_else(|_| EnvFilter::new("info")));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
