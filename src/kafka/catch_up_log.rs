//! The log of a rebuild's progress: a large repartition topic takes a while
//! to read, and an operator watching a pod that is not ready wants to know
//! how far it is.

use super::processor::Processor;
use crate::scoreboard::Scoreboard;
use std::time::Duration;

/// Progress of rebuilding partition state, logged every
/// [`CATCH_UP_LOG_INTERVAL`] while it lasts and once when it ends.
#[derive(Default)]
pub(super) struct CatchUpLog {
    /// When this rebuild began, and when progress was last logged.
    since: Option<(std::time::Instant, std::time::Instant)>,
}

const CATCH_UP_LOG_INTERVAL: Duration = Duration::from_secs(5);

impl CatchUpLog {
    pub(super) fn note(&mut self, processor: &Processor, board: &Scoreboard) {
        let partitions = processor.catching_up();
        match (partitions, self.since) {
            (0, None) => {}
            (0, Some((began, _))) => {
                self.since = None;
                tracing::info!(
                    seconds = began.elapsed().as_secs_f64(),
                    events_held = board.events_held(),
                    "partition state rebuilt; live"
                );
            }
            (_, None) => {
                let now = std::time::Instant::now();
                self.since = Some((now, now));
            }
            (_, Some((began, logged))) if logged.elapsed() >= CATCH_UP_LOG_INTERVAL => {
                let (read, total) = processor.catch_up_progress();
                tracing::info!(
                    partitions,
                    offsets_left = total - read,
                    events_held = board.events_held(),
                    seconds = began.elapsed().as_secs_f64(),
                    "rebuilding partition state"
                );
                self.since = Some((began, std::time::Instant::now()));
            }
            _ => {}
        }
    }
}
