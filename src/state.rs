//! The one scoreboard a process holds, behind its lock, and whether it is
//! whole yet.
//!
//! An event source gets the [`Writer`]: it applies events and says how far
//! its rebuild from the event log has got. HTTP and telemetry get a
//! [`Reader`]: it answers only once the rebuild is done, so no one ever sees
//! a partial scoreboard. Nothing else reaches the lock.

use crate::catalog::Catalog;
use crate::engine::{Engine, Explanation, HistoryPoint, ScoringModel, TimelineEvent};
use crate::event::{Span, Timestamp};
use crate::pipeline::Summary;
use crate::report::ScoresReport;
use crate::telemetry::Metrics;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Every event the source has delivered, scored.
pub struct Board {
    pub engine: Engine,
    /// Messages read since start (history included), as `replay` counts them.
    pub summary: Summary,
}

struct Shared {
    board: RwLock<Board>,
    metrics: Arc<Metrics>,
    /// False until the source has read the whole event log once.
    ready: AtomicBool,
    /// Messages read from the event log since start, and left to read
    /// before the scores are whole (`u64::MAX`: not known yet).
    rebuilt: AtomicU64,
    left: AtomicU64,
    max_contributions: usize,
    answers: Mutex<AnswerCache>,
}

/// Histories and timelines computed for the board as it was when it held
/// `events` accepted events: the same request is answered again without
/// the lock until a new event arrives.
#[derive(Default)]
struct AnswerCache {
    events: u64,
    /// By (vendor, first step, last step, step), in nanoseconds.
    histories: HashMap<(String, i64, i64, i64), Arc<Vec<HistoryPoint>>>,
    /// Each vendor's whole timeline.
    timelines: HashMap<String, Arc<Vec<TimelineEvent>>>,
}

/// Most answers kept at once.
const ANSWER_CACHE_ENTRIES: usize = 64;

/// How far a rebuild has got; the body of every 503 while it lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rebuilding {
    /// Messages read from the event log so far.
    pub messages_read: u64,
    /// Messages left before the scores are whole; `None` until the source
    /// knows where the log ends.
    pub messages_left: Option<u64>,
}

impl Rebuilding {
    /// For people: "rebuilding from the event log: 1200 messages read, 800 left".
    pub fn describe(&self) -> String {
        match self.messages_left {
            Some(left) => format!(
                "rebuilding from the event log: {} messages read, {left} left; scores are served once it is done",
                self.messages_read
            ),
            None => format!(
                "rebuilding from the event log: {} messages read, end of the log not known yet; scores are served once it is done",
                self.messages_read
            ),
        }
    }
}

/// A new, empty state and its two handles.
pub fn new(
    catalog: Arc<Catalog>,
    model: ScoringModel,
    metrics: Arc<Metrics>,
    max_contributions: usize,
) -> (Writer, Reader) {
    let shared = Arc::new(Shared {
        board: RwLock::new(Board { engine: Engine::new(catalog, model), summary: Summary::default() }),
        metrics,
        ready: AtomicBool::new(false),
        rebuilt: AtomicU64::new(0),
        left: AtomicU64::new(u64::MAX),
        max_contributions,
        answers: Mutex::default(),
    });
    (Writer(shared.clone()), Reader(shared))
}

/// The event source's handle.
pub struct Writer(Arc<Shared>);

impl Writer {
    pub fn board(&self) -> RwLockWriteGuard<'_, Board> {
        self.0.board.write().expect("board lock")
    }

    /// A read lock, for work that only reads the board (score updates).
    pub fn board_read(&self) -> RwLockReadGuard<'_, Board> {
        self.0.board.read().expect("board lock")
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    pub fn metrics_arc(&self) -> Arc<Metrics> {
        self.0.metrics.clone()
    }

    /// Rebuild progress: `left` is `None` while the end of the log is unknown.
    pub fn set_progress(&self, read: u64, left: Option<u64>) {
        self.0.rebuilt.store(read, Ordering::Relaxed);
        self.0.left.store(left.unwrap_or(u64::MAX), Ordering::Relaxed);
        self.0.metrics.set_rebuild_left(left);
    }

    /// The whole log has been read once: from now on the scores are whole.
    pub fn set_ready(&self) {
        self.0.left.store(0, Ordering::Relaxed);
        self.0.metrics.set_rebuild_left(Some(0));
        self.0.ready.store(true, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::Acquire)
    }

    /// Totals of what the source has delivered.
    pub fn summary(&self) -> Summary {
        self.board_read().summary
    }
}

/// The handle of HTTP and telemetry: answers only once the scores are whole.
#[derive(Clone)]
pub struct Reader(Arc<Shared>);

impl Reader {
    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::Acquire)
    }

    /// `Err` with the progress while the rebuild lasts.
    pub fn check_ready(&self) -> Result<(), Rebuilding> {
        if self.is_ready() {
            return Ok(());
        }
        let left = self.0.left.load(Ordering::Relaxed);
        Err(Rebuilding {
            messages_read: self.0.rebuilt.load(Ordering::Relaxed),
            messages_left: (left != u64::MAX).then_some(left),
        })
    }

    fn board(&self) -> RwLockReadGuard<'_, Board> {
        self.0.board.read().expect("board lock")
    }

    /// Every vendor's explained score as of `at`.
    pub fn report(&self, at: Timestamp) -> Result<ScoresReport, Rebuilding> {
        self.check_ready()?;
        let b = self.board();
        Ok(ScoresReport::build(&b.engine, at, self.0.max_contributions, b.summary))
    }

    /// One vendor's explained score; `Ok(None)` if the id is not in the catalog.
    pub fn explain(&self, vendor: &str, at: Timestamp) -> Result<Option<Explanation>, Rebuilding> {
        self.check_ready()?;
        let b = self.board();
        Ok(b.engine.catalog().lookup(vendor).map(|id| b.engine.explain(id, at, self.0.max_contributions)))
    }

    /// A vendor's score at each step from `from` to `to`; `Ok(None)` if the
    /// id is not in the catalog. Cached until the next new event.
    pub fn history(
        &self,
        vendor: &str,
        from: Timestamp,
        to: Timestamp,
        step: Span,
    ) -> Result<Option<Arc<Vec<HistoryPoint>>>, Rebuilding> {
        self.check_ready()?;
        // The last step, so that `to = now` asks the same until a step passes.
        let span = (i128::from(to.nanos()) - i128::from(from.nanos())).max(0);
        let step_nanos = i128::from(step.nanos());
        let last = (i128::from(from.nanos()) + span / step_nanos * step_nanos) as i64;
        let key = (vendor.to_owned(), from.nanos(), last, step.nanos());
        Ok(self.cached(
            |c| &mut c.histories,
            key,
            |engine| {
                let id = engine.catalog().lookup(vendor)?;
                Some(engine.history(id, from, Timestamp::from_nanos(last), step))
            },
        ))
    }

    /// A vendor's policy and market moves within `from..=to`; `Ok(None)` if
    /// the id is not in the catalog. The whole timeline is cached until the
    /// next new event, and cut to the range outside the lock.
    pub fn timeline(
        &self,
        vendor: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Option<Vec<TimelineEvent>>, Rebuilding> {
        self.check_ready()?;
        let all = self.cached(
            |c| &mut c.timelines,
            vendor.to_owned(),
            |engine| {
                let id = engine.catalog().lookup(vendor)?;
                Some(engine.timeline(id, Timestamp::from_nanos(i64::MIN), Timestamp::from_nanos(i64::MAX)))
            },
        );
        Ok(all.map(|all| all.iter().filter(|e| (from..=to).contains(&e.occurred_at)).cloned().collect()))
    }

    /// The answer cached under `key` while the board holds the same events;
    /// else `compute`d under the read lock and cached. `None`: `compute`
    /// found nothing to answer (an unknown vendor).
    fn cached<K: std::hash::Hash + Eq, V>(
        &self,
        map: fn(&mut AnswerCache) -> &mut HashMap<K, Arc<V>>,
        key: K,
        compute: impl FnOnce(&Engine) -> Option<V>,
    ) -> Option<Arc<V>> {
        let lock_cache = || self.0.answers.lock().unwrap_or_else(|p| p.into_inner());
        let events = self.board().engine.stats().accepted;
        {
            let mut cache = lock_cache();
            if cache.events == events {
                if let Some(v) = map(&mut cache).get(&key) {
                    return Some(v.clone());
                }
            }
        }
        let b = self.board();
        let value = Arc::new(compute(&b.engine)?);
        let events = b.engine.stats().accepted;
        drop(b);
        let mut cache = lock_cache();
        if cache.events != events || cache.histories.len() + cache.timelines.len() >= ANSWER_CACHE_ENTRIES {
            *cache = AnswerCache { events, ..AnswerCache::default() };
        }
        map(&mut cache).insert(key, value.clone());
        Some(value)
    }

    /// When the earliest event held occurred.
    pub fn first_event_at(&self) -> Result<Option<Timestamp>, Rebuilding> {
        self.check_ready()?;
        Ok(self.board().engine.first_event_at())
    }

    /// Totals delivered and distinct events held, without scoring anything.
    pub fn counts(&self) -> Result<(Summary, u64), Rebuilding> {
        self.check_ready()?;
        let b = self.board();
        Ok((b.summary, b.engine.stats().accepted))
    }

    /// The metrics text. Vendor series are refreshed as of now, and only
    /// once the scores are whole: a rebuilding process exports none.
    pub fn render_metrics(&self) -> String {
        // One reading: ready or not, and the board it shows.
        let scores = if self.is_ready() {
            crate::telemetry::score_families(Some(&self.board().engine), Timestamp::now())
        } else {
            crate::telemetry::score_families(None, Timestamp::now())
        };
        self.0.metrics.render(scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Decoder, Limits};

    /// Scrapes racing the rebuild's end and a writer see either no vendor
    /// series with `chiprisk_ready 0`, or every vendor with `chiprisk_ready 1`.
    #[test]
    fn concurrent_scrapes_see_the_whole_scoreboard_or_none_of_it() {
        let catalog = Arc::new(Catalog::default());
        let vendors = catalog.ids().count();
        let (writer, reader) = new(catalog.clone(), ScoringModel::default(), Arc::new(Metrics::new()), 5);
        let decoder = Decoder::new(catalog, Limits::default());
        std::thread::scope(|s| {
            let scrapers: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let mut seen = [0; 2];
                        for _ in 0..200 {
                            let text = reader.render_metrics();
                            let scores = text.lines().filter(|l| l.starts_with("chiprisk_vendor_risk_score{")).count();
                            let ready = text.lines().any(|l| l == "chiprisk_ready 1");
                            assert!(text.contains("chiprisk_ready "), "{text}");
                            assert_eq!(scores, if ready { vendors } else { 0 }, "ready: {ready}");
                            seen[usize::from(ready)] += 1;
                        }
                        seen
                    })
                })
                .collect();
            let mut events = crate::synthetic::Generator::new(3);
            for i in 0..3000 {
                writer.board().engine.apply(&decoder.decode(events.event().as_bytes()).unwrap());
                if i == 1000 {
                    writer.set_ready();
                }
            }
            writer.set_ready();
            for scraper in scrapers {
                scraper.join().unwrap();
            }
        });
        let text = reader.render_metrics();
        assert!(text.contains("chiprisk_ready 1") && text.contains("chiprisk_engine_events 3000"), "{text}");
    }
}
