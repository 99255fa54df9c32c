use super::*;
use crate::engine::ScoringModel;
use crate::event::Limits;
use crate::pipeline::Summary;
use crate::report::ScoresReport;

const EVENTS: &str = "chiprisk.events";

fn processor() -> Processor {
    Processor::new(Decoder::new(Arc::new(Catalog::default()), Limits::default()))
}

fn board() -> Board {
    Board { engine: Engine::new(Arc::new(Catalog::default()), ScoringModel::default()), summary: Summary::default() }
}

fn msg(partition: i32, offset: i64, payload: &str) -> InMessage<'_> {
    InMessage { topic: EVENTS, partition, offset, payload: payload.as_bytes(), timestamp_ms: Some(1_700_000_000_000) }
}

/// One message through the step: the records it would produce.
fn run<'a>(p: &mut Processor, b: &mut Board, m: &Metrics, msg: &InMessage<'a>, arrival: Arrival) -> Vec<Output<'a>> {
    let mut out = Vec::new();
    p.process(b, m, msg, arrival, &mut out);
    out
}

/// A metric's value in the text exposition, by its series as printed.
fn metric(m: &Metrics, series: &str) -> f64 {
    let text = m.render(Vec::new());
    let line = text.lines().find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '));
    line.unwrap_or_else(|| panic!("{series} not in\n{text}")).rsplit(' ').next().unwrap().parse().unwrap()
}

const BAN: &str = r#"{"id":"b","type":"export_ban","occurred_at":"2025-04-15T00:00:00Z","vendors":["nvidia","amd"],"products":["H20"],"title":"H20 licence requirement"}"#;

#[test]
fn a_new_rejected_message_is_dead_lettered_with_its_bytes_reason_and_origin_and_counted() {
    let (mut p, mut b, m) = (processor(), board(), Metrics::new());
    let out = run(&mut p, &mut b, &m, &msg(2, 41, "{not json"), Arrival::New);
    match &out[..] {
        [Output::DeadLetter { payload, reason, message, topic, partition, offset }] => {
            assert_eq!(*payload, b"{not json");
            assert_eq!(*reason, RejectReason::MalformedJson);
            assert!(!message.is_empty());
            assert_eq!((*topic, *partition, *offset), (EVENTS, 2, 41));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(b.summary.rejected, 1);
    assert_eq!(metric(&m, r#"chiprisk_events_rejected_total{reason="malformed_json"}"#), 1.0);
}

#[test]
fn a_message_re_read_to_rebuild_rebuilds_the_board_silently() {
    let (mut p, mut b, m) = (processor(), board(), Metrics::new());
    assert!(run(&mut p, &mut b, &m, &msg(0, 0, "{not json"), Arrival::Rebuild).is_empty(), "dead-lettered before");
    assert!(run(&mut p, &mut b, &m, &msg(0, 1, BAN), Arrival::Rebuild).is_empty());
    assert_eq!(b.summary, Summary { accepted: 1, duplicates: 0, rejected: 1 }, "the state holds history");
    assert!(b.engine.contains("b"));
    assert!(!p.updates_owed(), "history publishes no score update");
    assert_eq!(metric(&m, "chiprisk_rebuild_messages_total"), 2.0);
    assert_eq!(metric(&m, r#"chiprisk_events_rejected_total{reason="malformed_json"}"#), 0.0, "not traffic");
    assert_eq!(metric(&m, r#"chiprisk_events_total{outcome="accepted",type="export_ban"}"#), 0.0, "not traffic");
    p.observe_latencies(&m, Timestamp::now());
    assert_eq!(metric(&m, "chiprisk_event_latency_seconds_count"), 0.0);
}

#[test]
fn a_new_event_is_counted_timed_and_owes_one_update_per_changed_vendor() {
    let (mut p, mut b, m) = (processor(), board(), Metrics::new());
    assert!(run(&mut p, &mut b, &m, &msg(0, 0, BAN), Arrival::New).is_empty());
    let redelivered = run(&mut p, &mut b, &m, &msg(1, 5, BAN), Arrival::New);
    assert!(redelivered.is_empty());
    assert_eq!(metric(&m, r#"chiprisk_events_total{outcome="accepted",type="export_ban"}"#), 1.0);
    assert_eq!(metric(&m, r#"chiprisk_events_total{outcome="duplicate",type="export_ban"}"#), 1.0);
    p.observe_latencies(&m, Timestamp::now());
    assert_eq!(metric(&m, "chiprisk_event_latency_seconds_count"), 2.0, "each delivery timed once");

    let at = Timestamp::parse_rfc3339("2026-06-01T00:00:00Z").unwrap();
    let updates = p.score_updates(&b.engine, at);
    let keys: Vec<&str> = updates
        .iter()
        .map(|u| match u {
            Output::ScoreUpdate { key, payload } => {
                let v: serde_json::Value = serde_json::from_slice(payload).unwrap();
                assert_eq!(v["vendor"], key.as_str());
                assert_eq!(v["event_id"], "b");
                assert_eq!(v["title"], "H20 licence requirement");
                assert_eq!(
                    v["score"].as_f64().unwrap(),
                    b.engine.score(b.engine.catalog().lookup(key).unwrap(), at).score
                );
                key.as_str()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(keys, ["nvidia", "amd"], "catalog order, one each");
    assert!(!p.updates_owed());

    // A later event that leaves a score where it was publishes nothing for it.
    let same = r#"{"id":"c","type":"market_signal","occurred_at":"2025-04-15T00:00:00Z","vendors":["amd"],"value":0}"#;
    run(&mut p, &mut b, &m, &msg(0, 1, same), Arrival::New);
    assert!(p.updates_owed());
    assert!(p.score_updates(&b.engine, at).is_empty(), "unchanged score, not republished");
}

/// `n` synthetic events from `seed`, the first `redelivered` again, and a
/// few poison messages among them.
fn stream(seed: u64, n: usize, redelivered: usize) -> Vec<String> {
    let mut g = crate::synthetic::Generator::new(seed);
    let mut v: Vec<String> = (0..n).map(|_| g.event()).collect();
    v.extend(v[..redelivered].to_vec());
    for (i, bad) in ["{not json", "[1]", r#"{"id":"x","type":"export_ban"}"#].iter().enumerate() {
        v.insert(i * 97 + 13, bad.to_string());
    }
    v
}

#[test]
fn the_kafka_step_scores_any_split_of_history_and_new_bit_for_bit_like_a_replay() {
    let events = stream(7, 2000, 150);
    let at = Timestamp::parse_rfc3339("2026-06-01T00:00:00Z").unwrap();
    // The reference: `chiprisk replay`'s path over the same lines.
    let decoder = Decoder::new(Arc::new(Catalog::default()), Limits::default());
    let mut reference = board();
    let replay_metrics = Metrics::new();
    for e in &events {
        let Board { engine, summary } = &mut reference;
        crate::pipeline::process_counted(&decoder, engine, summary, &replay_metrics, e.as_bytes(), Arrival::New);
    }
    let expected = ScoresReport::build(&reference.engine, at, 25, reference.summary);
    // Four partitions, read interleaved; history up to a different offset in each.
    for split in [0usize, 1, 333, 1999, usize::MAX] {
        let (mut p, mut b, m) = (processor(), board(), Metrics::new());
        let mut dead = 0;
        for (i, e) in events.iter().enumerate() {
            let (partition, offset) = ((i % 4) as i32, (i / 4) as i64);
            let arrival = if i < split { Arrival::Rebuild } else { Arrival::New };
            dead += run(&mut p, &mut b, &m, &msg(partition, offset, e), arrival).len();
        }
        let got = ScoresReport::build(&b.engine, at, 25, b.summary);
        assert_eq!(serde_json::to_string(&got).unwrap(), serde_json::to_string(&expected).unwrap(), "split {split}");
        let new_bad = (0..3).map(|i| i * 97 + 13).filter(|i| *i >= split).count();
        assert_eq!(dead, new_bad, "split {split}: only new rejections are dead-lettered");
    }
}

#[test]
fn a_dead_letter_too_large_for_a_record_is_cut_and_says_how_long_it_was() {
    assert_eq!(dead_letter_payload(b"abc", 3), (&b"abc"[..], None));
    assert_eq!(dead_letter_payload(b"abcdef", 4), (&b"abcd"[..], Some(6)));
}
