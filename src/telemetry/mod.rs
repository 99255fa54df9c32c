//! Logs and metrics.

mod backfill;
pub mod families;
mod logging;
mod memory;
mod metrics;
mod scores;

pub use backfill::Backfill;
pub use logging::init_logging;
pub use metrics::{EventOutcome, KafkaErrorKind, KafkaMetrics, Metrics, ProducedKind};
pub use scores::{families as score_families, POLICY_CHANGE_HORIZON_DAYS};
