//! Where the loop stands in each partition of the event topics. No I/O.
//!
//! Every partition is read from its beginning. Two marks split it:
//! - the group's committed offset at start: below it is **history**, whose
//!   outputs were produced before (it rebuilds the scores silently); from
//!   it on, messages are **new** (counted, dead-lettered, published);
//! - the end of the log, as the broker last reported it: once the loop has
//!   read that far in every partition, the scores are whole and the process
//!   goes ready, for good.

use crate::pipeline::Arrival;

/// One partition of an event topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub topic: String,
    pub partition: i32,
    /// The next offset to read.
    next: i64,
    /// Offsets below this are history (the committed offset at start).
    history_until: i64,
    /// The end of the log (high watermark) as last reported; `None` until
    /// the broker has answered a fetch.
    end: Option<i64>,
    /// Read up to the end at least once.
    caught_up: bool,
}

#[derive(Debug, Default)]
pub struct Positions {
    partitions: Vec<Partition>,
    /// Messages read so far, and of them history.
    read: u64,
    history_read: u64,
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
                history_until: committed.unwrap_or(0).max(0),
                end: None,
                caught_up: false,
            })
            .collect();
        Self { partitions, read: 0, history_read: 0 }
    }

    fn find(&mut self, topic: &str, partition: i32) -> Option<&mut Partition> {
        self.partitions.iter_mut().find(|p| p.partition == partition && p.topic == topic)
    }

    /// A message was read: whether it is history or new.
    pub fn read(&mut self, topic: &str, partition: i32, offset: i64) -> Arrival {
        self.read += 1;
        let Some(p) = self.find(topic, partition) else { return Arrival::New };
        p.next = p.next.max(offset + 1);
        if offset < p.history_until {
            self.history_read += 1;
            Arrival::History
        } else {
            Arrival::New
        }
    }

    /// The broker's latest report of a partition's log: its start (`low`)
    /// and end (`high`), negative if not known yet. A partition is caught up
    /// once read to its end, or if it holds nothing.
    pub fn note_log(&mut self, topic: &str, partition: i32, low: i64, high: i64) {
        let Some(p) = self.find(topic, partition) else { return };
        if high < 0 {
            return;
        }
        p.end = Some(high);
        if p.next >= high || low >= high {
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

    /// Messages of history read so far.
    pub fn history_read(&self) -> u64 {
        self.history_read
    }

    /// Offsets of history to re-read in all: the committed offsets.
    pub fn history_offsets(&self) -> u64 {
        self.partitions.iter().map(|p| p.history_until as u64).sum()
    }

    /// Each partition with its lag: messages between the position and the
    /// end of the log (where the end is known).
    pub fn lags(&self) -> impl Iterator<Item = (&str, i32, u64)> {
        self.partitions
            .iter()
            .filter_map(|p| p.end.map(|end| (p.topic.as_str(), p.partition, (end - p.next).max(0) as u64)))
    }

    pub fn partitions(&self) -> impl Iterator<Item = (&str, i32)> {
        self.partitions.iter().map(|p| (p.topic.as_str(), p.partition))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two() -> Positions {
        Positions::new([("e".to_owned(), 0, Some(3)), ("e".to_owned(), 1, None)])
    }

    #[test]
    fn below_the_committed_offset_is_history_and_from_it_on_new() {
        let mut p = two();
        assert_eq!(p.read("e", 0, 2), Arrival::History);
        assert_eq!(p.read("e", 0, 3), Arrival::New);
        assert_eq!(p.read("e", 1, 0), Arrival::New, "nothing committed: all new");
        assert_eq!(p.history_read(), 1);
    }

    #[test]
    fn caught_up_once_every_partition_is_read_to_its_end_and_for_good() {
        let mut p = two();
        assert!(!p.caught_up());
        assert_eq!(p.left(), None, "no end known yet");
        p.note_log("e", 0, 0, 5);
        p.note_log("e", 1, -1001, -1001);
        assert_eq!(p.left(), None, "partition 1's end is still unknown");
        p.note_log("e", 1, 0, 0);
        assert!(!p.caught_up(), "partition 0 is not read to its end");
        assert_eq!(p.left(), Some(5));
        for offset in 0..5 {
            p.read("e", 0, offset);
        }
        assert_eq!(p.left(), Some(0));
        p.note_log("e", 0, 0, 5);
        assert!(p.caught_up());
        p.note_log("e", 0, 0, 9);
        assert!(p.caught_up(), "new messages later do not make the scores partial");
        assert_eq!(p.lags().collect::<Vec<_>>(), [("e", 0, 4), ("e", 1, 0)]);
    }

    #[test]
    fn a_partition_whose_events_were_all_deleted_is_caught_up() {
        let mut p = Positions::new([("e".to_owned(), 0, None)]);
        p.note_log("e", 0, 40, 40);
        assert!(p.caught_up());
    }
}
