//! Where the loop stands in each partition of the event topics. No I/O.
//!
//! Every partition is read from its beginning. Two marks split it:
//! - the group's committed offset at start: below it is **history**, whose
//!   outputs were produced before (it rebuilds the scores silently); from
//!   it on, messages are **new** (counted, dead-lettered, published);
//! - the end of the log, as the broker last reported it: once the loop has
//!   read that far in every partition, the scores are whole and the process
//!   goes ready, for good. "That far" is the last message read, or, where
//!   the log ends in records no application sees (transaction markers,
//!   records compacted away), librdkafka's fetch position with nothing left
//!   in its queue.

use crate::pipeline::Arrival;

/// One partition of an event topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub topic: String,
    pub partition: i32,
    /// The next offset to read.
    next: i64,
    /// Offsets below this are re-read to rebuild (the committed offset at start).
    rebuild_until: i64,
    /// The end of the log (high watermark) as last reported; `None` until
    /// the broker has answered a fetch.
    end: Option<i64>,
    /// Messages behind the end (where the end is known).
    behind: u64,
    /// Read up to the end at least once.
    caught_up: bool,
}

/// A partition's log as the broker last reported it in a fetch response,
/// and how far librdkafka has fetched it (its statistics; offsets are
/// negative where unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogReport {
    /// The log's start and end (high watermark).
    pub low: i64,
    pub high: i64,
    /// The last stable offset: the end a `read_committed` consumer can reach.
    pub stable: i64,
    /// The next offset librdkafka will fetch.
    pub fetched_to: i64,
    /// Messages fetched and not yet handed to the loop.
    pub queued: i64,
}

#[derive(Debug, Default)]
pub struct Positions {
    partitions: Vec<Partition>,
    /// Messages read so far, and of them re-read to rebuild.
    read: u64,
    rebuilt: u64,
}

impl Positions {
    /// Every partition to read, with the group's committed offset (`None`
    /// if nothing was committed: everything is new).
    pub fn new(partitions: impl IntoIterator<Item = (String, i32, Option<i64>)>) -> Self {
        let partitions = partitions
            .into_iter()
            .map(|(topic, partition, committed)| Partition {
                topic,
                partition,
                next: 0,
                rebuild_until: committed.unwrap_or(0).max(0),
                end: None,
                behind: 0,
                caught_up: false,
            })
            .collect();
        Self { partitions, read: 0, rebuilt: 0 }
    }

    fn find(&mut self, topic: &str, partition: i32) -> Option<&mut Partition> {
        self.partitions.iter_mut().find(|p| p.partition == partition && p.topic == topic)
    }

    /// A message was read: whether it rebuilds (below the committed offset)
    /// or is new.
    pub fn read(&mut self, topic: &str, partition: i32, offset: i64) -> Arrival {
        self.read += 1;
        let Some(p) = self.find(topic, partition) else { return Arrival::New };
        p.next = p.next.max(offset + 1);
        if offset < p.rebuild_until {
            self.rebuilt += 1;
            Arrival::Rebuild
        } else {
            Arrival::New
        }
    }

    /// The latest report of a partition's log. Reports that carry no log
    /// are ignored: librdkafka's -1001 before the first fetch response, and
    /// error responses (Tansu answers an unknown partition with a start of
    /// -1 and an end of 0).
    pub fn note_log(&mut self, topic: &str, partition: i32, r: &LogReport) {
        let Some(p) = self.find(topic, partition) else { return };
        if r.low < 0 || r.high < r.low {
            return;
        }
        let end = if (r.low..=r.high).contains(&r.stable) { r.stable } else { r.high };
        let reached = if r.queued == 0 { p.next.max(r.fetched_to) } else { p.next };
        p.end = Some(end);
        p.behind = (end - reached).max(0) as u64;
        if reached >= end {
            p.caught_up = true;
        }
    }

    /// Every partition has been read to its end once.
    pub fn caught_up(&self) -> bool {
        self.partitions.iter().all(|p| p.caught_up)
    }

    /// Messages left before every partition is caught up; `None` while the
    /// end of a partition still to catch up is not known.
    pub fn left(&self) -> Option<u64> {
        self.partitions.iter().filter(|p| !p.caught_up).map(|p| p.end.map(|end| (end - p.next).max(0) as u64)).sum()
    }

    /// Messages read so far.
    pub fn messages_read(&self) -> u64 {
        self.read
    }

    /// Messages re-read to rebuild so far.
    pub fn rebuilt(&self) -> u64 {
        self.rebuilt
    }

    /// Offsets to re-read to rebuild, in all: the committed offsets.
    pub fn rebuild_offsets(&self) -> u64 {
        self.partitions.iter().map(|p| p.rebuild_until as u64).sum()
    }

    /// Each partition with its lag: messages between the position and the
    /// end of the log (where the end is known).
    pub fn lags(&self) -> impl Iterator<Item = (&str, i32, u64)> {
        self.partitions.iter().filter(|p| p.end.is_some()).map(|p| (p.topic.as_str(), p.partition, p.behind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two() -> Positions {
        Positions::new([("e".to_owned(), 0, Some(3)), ("e".to_owned(), 1, None)])
    }

    /// A report of a log from `low` to `high`, fetched to `fetched_to`, with
    /// `queued` messages not yet handed over.
    fn log(low: i64, high: i64, fetched_to: i64, queued: i64) -> LogReport {
        LogReport { low, high, stable: high, fetched_to, queued }
    }

    #[test]
    fn below_the_committed_offset_rebuilds_and_from_it_on_is_new() {
        let mut p = two();
        assert_eq!(p.read("e", 0, 2), Arrival::Rebuild);
        assert_eq!(p.read("e", 0, 3), Arrival::New);
        assert_eq!(p.read("e", 1, 0), Arrival::New, "nothing committed: all new");
        assert_eq!(p.rebuilt(), 1);
        assert_eq!(p.messages_read(), 3);
    }

    #[test]
    fn caught_up_once_every_partition_is_read_to_its_end_and_for_good() {
        let mut p = two();
        assert!(!p.caught_up());
        assert_eq!(p.left(), None, "no end known yet");
        p.note_log("e", 0, &log(0, 5, 5, 5));
        p.note_log("e", 1, &log(-1001, -1001, -1001, 0));
        assert_eq!(p.left(), None, "partition 1's end is still unknown");
        p.note_log("e", 1, &log(0, 0, 0, 0));
        assert!(!p.caught_up(), "partition 0's messages are fetched, not yet read");
        assert_eq!(p.left(), Some(5));
        for offset in 0..5 {
            p.read("e", 0, offset);
        }
        p.note_log("e", 0, &log(0, 5, 5, 0));
        assert!(p.caught_up());
        p.note_log("e", 0, &log(0, 9, 5, 0));
        assert!(p.caught_up(), "new messages later do not make the scores partial");
        assert_eq!(p.lags().collect::<Vec<_>>(), [("e", 0, 4), ("e", 1, 0)]);
    }

    #[test]
    fn an_error_response_is_no_report_of_the_log() {
        let mut p = Positions::new([("e".to_owned(), 0, None)]);
        // Tansu's answer for an unknown partition: start -1, end 0.
        p.note_log("e", 0, &log(-1, 0, 0, 0));
        assert!(!p.caught_up());
        assert_eq!(p.left(), None);
    }

    #[test]
    fn a_log_ending_in_records_no_one_reads_is_caught_up_by_the_fetch_position() {
        // Messages 0..=8, then a transaction marker at 9: the loop reads up to 8.
        let mut p = Positions::new([("e".to_owned(), 0, None)]);
        for offset in 0..9 {
            p.read("e", 0, offset);
        }
        p.note_log("e", 0, &log(0, 10, 10, 1));
        assert!(!p.caught_up(), "a message is still queued");
        p.note_log("e", 0, &log(0, 10, 10, 0));
        assert!(p.caught_up());
        assert_eq!(p.lags().collect::<Vec<_>>(), [("e", 0, 0)]);
    }

    #[test]
    fn a_read_committed_consumer_is_caught_up_at_the_last_stable_offset() {
        let mut p = Positions::new([("e".to_owned(), 0, None)]);
        p.read("e", 0, 0);
        p.note_log("e", 0, &LogReport { low: 0, high: 4, stable: 1, fetched_to: 1, queued: 0 });
        assert!(p.caught_up(), "offsets 1..4 belong to an open transaction");
    }

    #[test]
    fn a_partition_whose_events_were_all_deleted_is_caught_up() {
        let mut p = Positions::new([("e".to_owned(), 0, None)]);
        p.note_log("e", 0, &log(40, 40, 40, 0));
        assert!(p.caught_up());
    }
}
