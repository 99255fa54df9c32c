use super::*;
use crate::engine::{Engine, ScoringModel};
use crate::event::Limits;

const EVENTS: &str = "chiprisk.events";
const BY_VENDOR: &str = "chiprisk.events.by-vendor";
const PARTITIONS: i32 = 4;

fn processor() -> Processor {
    let decoder = Decoder::new(Arc::new(Catalog::default()), Limits::default());
    Processor::new(decoder, BY_VENDOR.into(), PARTITIONS)
}

fn board() -> Scoreboard {
    Scoreboard::empty(Arc::new(Catalog::default()), ScoringModel::default())
}

fn msg<'a>(topic: &'a str, partition: i32, offset: i64, payload: &'a str) -> InMessage<'a> {
    InMessage { topic, partition, offset, payload: payload.as_bytes(), timestamp_ms: None, key: None }
}

/// One message through the processor: the records it would produce.
fn run<'a>(p: &mut Processor, b: &mut Scoreboard, m: &Metrics, msg: &InMessage<'a>) -> Vec<Output<'a>> {
    let mut out = Vec::new();
    p.process(b, m, msg, &mut out);
    out
}

const MULTI: &str = r#"{"id":"m","type":"purchase_ban","occurred_at":"2025-11-05T00:00:00Z","vendors":["nvidia","amd","intel","huawei"],"title":"State data centres"}"#;

#[test]
fn an_accepted_event_is_routed_once_to_each_partition_owning_its_vendors() {
    let mut p = processor();
    let mut b = board();
    let out = run(&mut p, &mut b, &Metrics::new(), &msg(EVENTS, 0, 7, MULTI));
    let partitions: Vec<i32> = out
        .iter()
        .map(|o| match o {
            Output::Route { partition, payload, .. } => {
                assert_eq!(*payload, MULTI.as_bytes(), "routed unchanged");
                *partition
            }
            other => panic!("{other:?}"),
        })
        .collect();
    let mut expected: Vec<i32> =
        ["nvidia", "amd", "intel", "huawei"].iter().map(|v| ownership::owner(v, PARTITIONS)).collect();
    expected.sort();
    expected.dedup();
    assert_eq!(partitions, expected);
}

#[test]
fn a_rejected_message_is_dead_lettered_with_its_bytes_reason_and_origin() {
    let mut p = processor();
    let mut b = board();
    let out = run(&mut p, &mut b, &Metrics::new(), &msg(EVENTS, 2, 41, "{not json"));
    match &out[..] {
        [Output::DeadLetter { payload, reason, topic, partition, offset, .. }] => {
            assert_eq!(*payload, b"{not json");
            assert_eq!(*reason, RejectReason::MalformedJson);
            assert_eq!((*topic, *partition, *offset), (EVENTS, 2, 41));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(b.summary().rejected, 1);
}

#[test]
fn catch_up_publishes_nothing_and_the_partition_goes_live_at_the_committed_offset() {
    let mut p = processor();
    let mut b = board();
    let nvidia_partition = ownership::owner("nvidia", PARTITIONS);
    p.assign(&mut b, nvidia_partition, Some(2));
    assert_eq!(p.catch_up_progress(), (0, 2));
    let m = Metrics::new();
    let e0 = r#"{"id":"a","type":"export_ban","occurred_at":"2025-04-15T00:00:00Z","vendors":["nvidia"]}"#;
    let e1 = r#"{"id":"b","type":"antitrust_action","occurred_at":"2025-09-15T00:00:00Z","vendors":["nvidia"]}"#;
    let e2 = r#"{"id":"c","type":"procurement_pressure","occurred_at":"2025-10-01T00:00:00Z","vendors":["nvidia"],"title":"Customs checks"}"#;
    run(&mut p, &mut b, &m, &msg(BY_VENDOR, nvidia_partition, 0, e0));
    assert_eq!(p.phase(nvidia_partition), Some(Phase::CatchingUp { until: 2 }));
    assert_eq!(p.catch_up_progress(), (1, 2), "one of two offsets read");
    run(&mut p, &mut b, &m, &msg(BY_VENDOR, nvidia_partition, 1, e1));
    assert_eq!(p.phase(nvidia_partition), Some(Phase::Live));
    assert_eq!(p.catch_up_progress(), (0, 0), "nothing left to read");
    p.start_update_round();
    assert!(p.flush_updates(&b, Timestamp::now(), usize::MAX).is_empty(), "nothing published for history");

    run(&mut p, &mut b, &m, &msg(BY_VENDOR, nvidia_partition, 2, e2));
    p.start_update_round();
    let updates = p.flush_updates(&b, Timestamp::now(), usize::MAX);
    match &updates[..] {
        [Output::ScoreUpdate { key, payload }] => {
            assert_eq!(key, "nvidia");
            let v: serde_json::Value = serde_json::from_slice(payload).unwrap();
            assert_eq!(v["event_id"], "c");
            assert_eq!(v["title"], "Customs checks");
            assert!(v["score"].as_f64().unwrap() > 0.0);
        }
        other => panic!("{other:?}"),
    }
    // A redelivered event changes nothing and publishes nothing.
    run(&mut p, &mut b, &m, &msg(BY_VENDOR, nvidia_partition, 3, e2));
    p.start_update_round();
    assert!(p.flush_updates(&b, Timestamp::now(), usize::MAX).is_empty());
}

/// Routes events through stage 1, then feeds each repartition partition to
/// the replica it is assigned to, as Kafka would.
fn run_replicas(events: &[String], assignment: &[Vec<i32>]) -> Vec<(String, f64)> {
    let m = Metrics::new();
    let mut router = processor();
    let mut scratch = board();
    let mut partitions: BTreeMap<i32, Vec<Vec<u8>>> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        for o in run(&mut router, &mut scratch, &m, &msg(EVENTS, 0, i as i64, e)) {
            if let Output::Route { partition, payload, .. } = o {
                partitions.entry(partition).or_default().push(payload.to_vec());
            }
        }
    }
    let at = Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
    let mut scores = Vec::new();
    let mut counted = 0;
    for owned in assignment {
        let mut p = processor();
        let mut b = board();
        for &part in owned {
            p.assign(&mut b, part, None);
            for (offset, payload) in partitions.get(&part).into_iter().flatten().enumerate() {
                let payload = std::str::from_utf8(payload).unwrap();
                run(&mut p, &mut b, &m, &msg(BY_VENDOR, part, offset as i64, payload));
            }
        }
        let report = b.report(at, 25);
        counted += report.summary.accepted + report.summary.duplicates;
        scores.extend(report.vendors.into_iter().map(|x| (x.vendor, x.score)));
    }
    scores.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(counted, events.len() as u64, "each event counted once over all replicas");
    scores
}

/// `n` synthetic events from `seed`, then [`MULTI`], then the first
/// `redelivered` again.
fn synthetic(seed: u64, n: usize, redelivered: usize) -> Vec<String> {
    let mut g = crate::synthetic::Generator::new(seed);
    let mut events: Vec<String> = (0..n).map(|_| g.event()).collect();
    events.push(MULTI.into());
    events.extend(events[..redelivered].to_vec());
    events
}

/// The reference: every event through one engine, as `chiprisk replay` does.
fn replayed(events: &[String]) -> (Arc<Catalog>, Engine) {
    let catalog = Arc::new(Catalog::default());
    let decoder = Decoder::new(catalog.clone(), Limits::default());
    let mut engine = Engine::new(catalog.clone(), ScoringModel::default());
    for e in events {
        crate::pipeline::process(&decoder, &mut engine, e.as_bytes());
    }
    (catalog, engine)
}

#[test]
fn two_replicas_over_four_partitions_export_together_what_one_replay_scores() {
    let events = synthetic(3, 3000, 100);

    let (catalog, engine) = replayed(&events);
    let at = Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
    let mut reference: Vec<(String, f64)> =
        engine.scores_at(at).into_iter().map(|(v, s)| (catalog.get(v).id.clone(), s.score)).collect();
    reference.sort_by(|a, b| a.0.cmp(&b.0));

    assert_eq!(run_replicas(&events, &[vec![0, 1], vec![2, 3]]), reference);
    assert_eq!(run_replicas(&events, &[vec![0, 1, 2, 3]]), reference, "after one replica stops");
    assert_eq!(run_replicas(&events, &[vec![3], vec![1], vec![0, 2]]), reference);
}

/// Stage 1 output: the routed copies (partition, payload, key).
fn routed(out: Vec<Output>) -> Vec<(i32, Vec<u8>, Vec<u8>)> {
    out.into_iter()
        .filter_map(|o| match o {
            Output::Route { partition, payload, key, .. } => {
                let (key, len) = key.encode();
                Some((partition, payload.to_vec(), key[..len].to_vec()))
            }
            _ => None,
        })
        .collect()
}

/// A routed copy as stage 2 reads it.
fn copy<'a>(partition: i32, offset: i64, payload: &'a [u8], key: &'a [u8]) -> InMessage<'a> {
    InMessage { topic: BY_VENDOR, partition, offset, payload, timestamp_ms: None, key: Some(key) }
}

#[test]
fn the_local_shortcut_scores_an_event_when_routed_and_its_copy_counts_it_once() {
    let m = Metrics::new();
    let mut p = processor();
    let mut b = board();
    for part in 0..PARTITIONS {
        p.assign(&mut b, part, None);
    }
    let nvidia = b.catalog().lookup("nvidia").unwrap();
    let e = r#"{"id":"x","type":"export_ban","occurred_at":"2025-04-15T00:00:00Z","vendors":["nvidia"],"title":"Ban"}"#;
    let copies = routed(run(&mut p, &mut b, &m, &msg(EVENTS, 0, 0, e)));
    assert_eq!(copies.len(), 1);
    let now = Timestamp::now();
    assert!(b.owner(nvidia).unwrap().score(nvidia, now).score > 0.0, "scored before the copy is read");
    assert_eq!(b.summary().accepted, 0, "counted when the copy is read");
    p.start_update_round();
    let updates = p.flush_updates(&b, now, usize::MAX);
    assert_eq!(updates.len(), 1, "{updates:?}");

    // The copy: counted once, as accepted; no second score update.
    let (part, payload, key) = &copies[0];
    run(&mut p, &mut b, &m, &copy(*part, 0, payload, key));
    assert_eq!((b.summary().accepted, b.summary().duplicates), (1, 0));
    p.start_update_round();
    assert!(p.flush_updates(&b, now, usize::MAX).is_empty());

    // A redelivery through both stages is a duplicate.
    let again = routed(run(&mut p, &mut b, &m, &msg(EVENTS, 0, 1, e)));
    let (part, payload, key) = &again[0];
    run(&mut p, &mut b, &m, &copy(*part, 1, payload, key));
    assert_eq!((b.summary().accepted, b.summary().duplicates), (1, 1));
}

#[test]
fn no_shortcut_into_a_shard_that_is_catching_up_or_was_rebuilt() {
    let m = Metrics::new();
    let mut p = processor();
    let mut b = board();
    let part = ownership::owner("nvidia", PARTITIONS);
    let nvidia = b.catalog().lookup("nvidia").unwrap();
    let e = r#"{"id":"x","type":"export_ban","occurred_at":"2025-04-15T00:00:00Z","vendors":["nvidia"]}"#;
    p.assign(&mut b, part, Some(5));
    routed(run(&mut p, &mut b, &m, &msg(EVENTS, 0, 0, e)));
    assert_eq!(b.owner(nvidia).unwrap().stats().accepted, 0, "catching up: history first");

    // Applied ahead, then the partition is revoked and assigned again: the
    // rebuilt shard reads the copy as new, and counts it once.
    p.assign(&mut b, part, None);
    let copies = routed(run(&mut p, &mut b, &m, &msg(EVENTS, 0, 1, e)));
    assert_eq!(b.owner(nvidia).unwrap().stats().accepted, 1);
    p.revoke(&mut b, part);
    p.assign(&mut b, part, None);
    let (_, payload, key) = &copies[0];
    run(&mut p, &mut b, &m, &copy(part, 0, payload, key));
    assert_eq!((b.summary().accepted, b.summary().duplicates), (1, 0));
    assert!(b.owner(nvidia).unwrap().score(nvidia, Timestamp::now()).score > 0.0);
}

#[test]
fn one_replica_that_routes_and_scores_counts_every_event_once_and_scores_like_a_replay() {
    let events = synthetic(5, 2000, 50);
    let (catalog, reference) = replayed(&events);

    let m = Metrics::new();
    let mut p = processor();
    let mut b = board();
    for part in 0..PARTITIONS {
        p.assign(&mut b, part, None);
    }
    // Copies come back some events later, as they would through the broker.
    let mut offsets = [0i64; PARTITIONS as usize];
    let mut in_transit: std::collections::VecDeque<(i32, Vec<u8>, Vec<u8>)> = Default::default();
    for (i, e) in events.iter().enumerate() {
        in_transit.extend(routed(run(&mut p, &mut b, &m, &msg(EVENTS, 0, i as i64, e))));
        while in_transit.len() > 7 || (i + 1 == events.len() && !in_transit.is_empty()) {
            let (part, payload, key) = in_transit.pop_front().unwrap();
            let offset = offsets[part as usize];
            offsets[part as usize] += 1;
            run(&mut p, &mut b, &m, &copy(part, offset, &payload, &key));
        }
    }
    let summary = b.summary();
    assert_eq!((summary.accepted, summary.duplicates), (reference.stats().accepted, reference.stats().duplicates));
    let at = Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();
    for (v, s) in reference.scores_at(at) {
        assert_eq!(b.owner(v).unwrap().score(v, at), s, "{}", catalog.get(v).id);
    }
}

#[test]
fn a_copy_the_shortcut_applied_elsewhere_or_keyed_by_an_earlier_version_is_applied_like_any_other() {
    let m = Metrics::new();
    let e = r#"{"id":"x","type":"export_ban","occurred_at":"2025-04-15T00:00:00Z","vendors":["nvidia"]}"#;
    let part = ownership::owner("nvidia", PARTITIONS);
    // Replica A routes the event into its own live shard.
    let (mut a, mut board_a) = (processor(), board());
    a.assign(&mut board_a, part, None);
    let copies = routed(run(&mut a, &mut board_a, &m, &msg(EVENTS, 0, 0, e)));
    let (_, payload, key) = &copies[0];
    assert!(matches!(CopyKey::parse(key), Some(CopyKey { ahead: Some(_), .. })), "the key records the shortcut");

    // Replica B scores that partition now (a rebalance): its shard is
    // another instance, so it applies the copy and counts it once.
    let (mut b, mut board_b) = (processor(), board());
    b.assign(&mut board_b, part, None);
    let nvidia = board_b.catalog().lookup("nvidia").unwrap();
    run(&mut b, &mut board_b, &m, &copy(part, 0, payload, key));
    assert_eq!((board_b.summary().accepted, board_b.summary().duplicates), (1, 0));
    assert!(board_b.owner(nvidia).unwrap().score(nvidia, Timestamp::now()).score > 0.0);
    run(&mut b, &mut board_b, &m, &copy(part, 1, payload, key));
    assert_eq!((board_b.summary().accepted, board_b.summary().duplicates), (1, 1), "read twice: a duplicate");

    // A copy keyed by vendor id, as earlier versions wrote them.
    let (mut c, mut board_c) = (processor(), board());
    c.assign(&mut board_c, part, None);
    run(&mut c, &mut board_c, &m, &copy(part, 0, payload, b"nvidia"));
    assert_eq!((board_c.summary().accepted, board_c.summary().duplicates), (1, 0));
    assert_eq!(
        board_c.owner(nvidia).unwrap().score(nvidia, Timestamp::now()),
        board_b.owner(nvidia).unwrap().score(nvidia, Timestamp::now())
    );
}

/// Routed copies (as [`routed`] gives them) in bundles, as the runner sends
/// them: (partition, value).
fn bundled(copies: &[(i32, Vec<u8>, Vec<u8>)], max_bytes: usize) -> Vec<(i32, Vec<u8>)> {
    let mut b = bundle::Bundler::new(max_bytes);
    for (part, payload, key) in copies {
        b.push(*part, bundle::Entry { key, timestamp_ms: None, payload });
    }
    b.finish()
}

#[test]
fn copies_read_in_bundles_count_and_score_as_copies_read_one_by_one() {
    let events = synthetic(9, 1500, 40);
    let (catalog, reference) = replayed(&events);
    let at = Timestamp::parse_rfc3339("2026-01-01T00:00:00Z").unwrap();

    // Replica A routes (with the local shortcut into its live shards) and
    // reads its own bundles back, a turn of 100 events at a time.
    let m = Metrics::new();
    let (mut a, mut board_a) = (processor(), board());
    for part in 0..PARTITIONS {
        a.assign(&mut board_a, part, None);
    }
    let mut log: BTreeMap<i32, Vec<Vec<u8>>> = BTreeMap::new();
    for (turn, chunk) in events.chunks(100).enumerate() {
        let mut copies = Vec::new();
        for (i, e) in chunk.iter().enumerate() {
            copies.extend(routed(run(&mut a, &mut board_a, &m, &msg(EVENTS, 0, (turn * 100 + i) as i64, e))));
        }
        for (part, value) in bundled(&copies, 8 * 1024) {
            let offsets = log.entry(part).or_default();
            let out = run(&mut a, &mut board_a, &m, &copy(part, offsets.len() as i64, &value, bundle::KEY));
            assert!(out.is_empty(), "{out:?}");
            offsets.push(value);
        }
    }
    let summary = board_a.summary();
    assert_eq!((summary.accepted, summary.duplicates), (reference.stats().accepted, reference.stats().duplicates));
    assert!(log.values().map(Vec::len).sum::<usize>() > 4 * 15, "several bundles per partition: {log:?}");

    // Replica B rebuilds every partition from the bundles: no shortcut
    // applied there, so each copy is decoded and applied.
    let (mut b, mut board_b) = (processor(), board());
    for (&part, values) in &log {
        b.assign(&mut board_b, part, Some(values.len() as i64));
        for (offset, value) in values.iter().enumerate() {
            run(&mut b, &mut board_b, &m, &copy(part, offset as i64, value, bundle::KEY));
        }
        assert_eq!(b.phase(part), Some(Phase::Live), "live after its last bundle");
    }
    b.start_update_round();
    assert!(b.flush_updates(&board_b, at, usize::MAX).is_empty(), "nothing published for history");
    let summary = board_b.summary();
    assert_eq!((summary.accepted, summary.duplicates), (reference.stats().accepted, reference.stats().duplicates));
    for (v, s) in reference.scores_at(at) {
        assert_eq!(board_a.owner(v).unwrap().score(v, at), s, "{}", catalog.get(v).id);
        assert_eq!(board_b.owner(v).unwrap().score(v, at), s, "{}", catalog.get(v).id);
    }
}

#[test]
fn a_broken_bundle_applies_its_whole_entries_and_dead_letters_the_rest() {
    let m = Metrics::new();
    let mut router = processor();
    let mut scratch = board();
    let part = ownership::owner("nvidia", PARTITIONS);
    let events = [
        r#"{"id":"x","type":"export_ban","occurred_at":"2025-04-15T00:00:00Z","vendors":["nvidia"]}"#,
        r#"{"id":"y","type":"antitrust_action","occurred_at":"2025-09-15T00:00:00Z","vendors":["nvidia"]}"#,
    ];
    let copies: Vec<_> = events
        .iter()
        .enumerate()
        .flat_map(|(i, e)| routed(run(&mut router, &mut scratch, &m, &msg(EVENTS, 0, i as i64, e))))
        .collect();
    let (_, value) = bundled(&copies, 1 << 20).remove(0);
    let cut = &value[..value.len() - 3];

    let (mut p, mut b) = (processor(), board());
    p.assign(&mut b, part, Some(1));
    let out = run(&mut p, &mut b, &m, &copy(part, 0, cut, bundle::KEY));
    assert_eq!((b.summary().accepted, b.summary().rejected), (1, 0), "the whole first entry counts");
    match &out[..] {
        [Output::DeadLetter { payload, reason, message, topic, partition, offset }] => {
            assert_eq!(*reason, RejectReason::MalformedJson);
            assert!(message.contains("cut short"), "{message}");
            assert_eq!((*topic, *partition, *offset), (BY_VENDOR, part, 0));
            assert!(payload.ends_with(&events[1].as_bytes()[..events[1].len() - 3]), "the rest, as read");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.phase(part), Some(Phase::Live), "the partition moves on");
}

/// `name`'s sample count and sum in the metrics' text.
fn histogram(m: &Metrics, name: &str) -> (f64, f64) {
    let text = m.render();
    let value = |suffix: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{name}_{suffix} ")))
            .unwrap_or_else(|| panic!("{name}_{suffix}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    (value("count"), value("sum"))
}

#[test]
fn latencies_run_from_the_kafka_timestamp_to_the_turn_that_read_and_applied_the_event() {
    let m = Metrics::new();
    let mut p = processor();
    let mut b = board();
    let part = ownership::owner("nvidia", PARTITIONS);
    p.assign(&mut b, part, None);
    let e = r#"{"id":"x","type":"export_ban","occurred_at":"2025-04-15T00:00:00Z","vendors":["nvidia"]}"#;
    let produced_ms = 1_800_000_000_000;
    let stamped = InMessage { timestamp_ms: Some(produced_ms), ..msg(EVENTS, 0, 0, e) };
    let copies = routed(run(&mut p, &mut b, &m, &stamped));
    run(&mut p, &mut b, &m, &msg(EVENTS, 0, 1, "{not json"));
    assert_eq!(histogram(&m, "chiprisk_event_latency_seconds").0, 0.0, "observed once per turn, not at once");

    let ms = |ms: i64| Timestamp::from_nanos(ms * 1_000_000);
    p.observe_latencies(&m, ms(produced_ms + 1_500), ms(produced_ms + 1_750));
    assert_eq!(histogram(&m, "chiprisk_kafka_read_latency_seconds"), (1.0, 1.5));
    assert_eq!(histogram(&m, "chiprisk_event_latency_seconds"), (1.0, 1.75), "applied by the shortcut");

    // Its copy, read back: counted already, so not observed again.
    let (_, payload, key) = &copies[0];
    let copy = InMessage { timestamp_ms: Some(produced_ms), ..copy(part, 0, payload, key) };
    run(&mut p, &mut b, &m, &copy);
    p.observe_latencies(&m, ms(produced_ms + 2_000), ms(produced_ms + 2_000));
    assert_eq!(histogram(&m, "chiprisk_event_latency_seconds").0, 1.0);
    assert_eq!(histogram(&m, "chiprisk_kafka_read_latency_seconds").0, 1.0, "copies are not events read");
}
