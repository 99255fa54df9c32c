//! The part of librdkafka's statistics (`STATISTICS.md`) the loop reads,
//! and what it makes of them. No I/O.

use super::positions::LogReport;
use std::collections::HashMap;

#[derive(Debug, serde::Deserialize)]
pub(super) struct Stats {
    #[serde(default)]
    topics: HashMap<String, TopicStats>,
    #[serde(default)]
    brokers: HashMap<String, BrokerStats>,
}

#[derive(Debug, serde::Deserialize)]
struct TopicStats {
    partitions: HashMap<String, PartitionStats>,
}

#[derive(Debug, serde::Deserialize)]
struct PartitionStats {
    partition: i32,
    #[serde(default = "unknown")]
    leader: i32,
    lo_offset: i64,
    hi_offset: i64,
    ls_offset: i64,
    next_offset: i64,
    fetchq_cnt: i64,
}

#[derive(Debug, serde::Deserialize)]
struct BrokerStats {
    nodeid: i32,
    state: String,
    /// Microseconds since the current connection last received, -1 if it
    /// has received nothing yet.
    #[serde(default = "unknown_i64")]
    rxidle: i64,
}

fn unknown() -> i32 {
    -1
}

fn unknown_i64() -> i64 {
    -1
}

impl Stats {
    /// Each partition's log as the broker last reported it. Partition -1 is
    /// librdkafka's internal "unassigned" partition.
    pub(super) fn ends(&self) -> Vec<(String, i32, LogReport)> {
        self.partitions()
            .map(|(topic, p)| {
                let report = LogReport {
                    low: p.lo_offset,
                    high: p.hi_offset,
                    stable: p.ls_offset,
                    fetched_to: p.next_offset,
                    queued: p.fetchq_cnt,
                };
                (topic.to_owned(), p.partition, report)
            })
            .collect()
    }

    /// When the leader of every partition last answered, `now` minus the
    /// longest silence among them (Unix seconds); `None` while any
    /// partition has no leader, or its leader is not connected or has sent
    /// nothing on its connection yet. A consumer fetches from each leader
    /// all the time (an idle fetch returns within `fetch.wait.max.ms`), so
    /// a leader that stays silent is unreachable, or stuck.
    pub(super) fn fetched_at(&self, now: f64) -> Option<f64> {
        let mut oldest: Option<f64> = None;
        for (_, p) in self.partitions() {
            let leader = self.brokers.values().find(|b| b.nodeid == p.leader && p.leader >= 0)?;
            if leader.state != "UP" || leader.rxidle < 0 {
                return None;
            }
            let at = now - leader.rxidle as f64 / 1e6;
            oldest = Some(oldest.map_or(at, |o| o.min(at)));
        }
        oldest
    }

    fn partitions(&self) -> impl Iterator<Item = (&str, &PartitionStats)> {
        self.topics
            .iter()
            .flat_map(|(topic, t)| t.partitions.values().filter(|p| p.partition >= 0).map(move |p| (topic.as_str(), p)))
    }
}

#[cfg(test)]
mod tests {
    use super::Stats;

    /// Statistics of a consumer of two partitions led by brokers 1 and 2,
    /// trimmed to the fields read (librdkafka sends many more).
    fn stats(state_2: &str, rxidle_2: i64, leader_1: i32) -> Stats {
        let json = serde_json::json!({
            "name": "rdkafka#consumer-1", "type": "consumer", "ts": 1, "time": 1,
            "brokers": {
                "GroupCoordinator": {"nodeid": -1, "state": "UP", "rxidle": 0},
                "b1:9092/1": {"nodeid": 1, "state": "UP", "rxidle": 20_000, "extra": 1},
                "b2:9092/2": {"nodeid": 2, "state": state_2, "rxidle": rxidle_2},
            },
            "topics": {"events": {"partitions": {
                "-1": {"partition": -1, "leader": -1, "lo_offset": -1001, "hi_offset": -1001, "ls_offset": -1001, "next_offset": -1001, "fetchq_cnt": 0},
                "0": {"partition": 0, "leader": leader_1, "lo_offset": 0, "hi_offset": 7, "ls_offset": 7, "next_offset": 7, "fetchq_cnt": 0},
                "1": {"partition": 1, "leader": 2, "lo_offset": 0, "hi_offset": 3, "ls_offset": 3, "next_offset": 2, "fetchq_cnt": 1},
            }}},
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn every_leader_answering_dates_the_fetch_by_the_longest_silence() {
        let at = stats("UP", 1_500_000, 1).fetched_at(100.0).unwrap();
        assert!((at - 98.5).abs() < 1e-9, "{at}");
    }

    #[test]
    fn a_leader_down_silent_or_unknown_dates_nothing() {
        assert_eq!(stats("DOWN", 1_500_000, 1).fetched_at(100.0), None);
        assert_eq!(stats("CONNECT", -1, 1).fetched_at(100.0), None);
        assert_eq!(stats("UP", -1, 1).fetched_at(100.0), None, "a new connection that has received nothing");
        assert_eq!(stats("UP", 0, -1).fetched_at(100.0), None, "a partition without a leader");
        assert_eq!(stats("UP", 0, 3).fetched_at(100.0), None, "a leader the statistics do not list");
    }

    #[test]
    fn ends_skip_the_unassigned_partition() {
        let mut ends = stats("UP", 0, 1).ends();
        ends.sort_by_key(|(_, p, _)| *p);
        assert_eq!(
            ends.iter().map(|(t, p, r)| (t.as_str(), *p, r.high)).collect::<Vec<_>>(),
            [("events", 0, 7), ("events", 1, 3)]
        );
    }
}
