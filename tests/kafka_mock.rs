//! The Kafka pipeline against librdkafka's in-process mock cluster: fast,
//! no broker to install. The end-to-end tests against a real broker are in
//! tests/e2e (run by scripts/test).

mod helpers;

use chiprisk::config::Settings;
use chiprisk::engine::{Engine, ScoringModel};
use chiprisk::event::{Decoder, Limits, Timestamp};
use chiprisk::report::ScoresReport;
use chiprisk::Catalog;
use helpers::{spawn_with, wait_until, wait_until_within, TestApp};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::Duration;

const AT: &str = "2026-06-01T00:00:00Z";

fn settings(brokers: &str, group: &str) -> Settings {
    let mut s = helpers::test_settings();
    s.kafka.brokers = Some(brokers.into());
    s.kafka.group_id = group.into();
    s.kafka.create_topics = false;
    // The mock cluster has no DescribeConfigs; the retention check is
    // tested against the real broker (tests/e2e).
    s.kafka.accept_history_loss = true;
    s.kafka.drain_timeout_ms = std::time::Duration::from_millis(2_000);
    s
}

fn cluster() -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic("chiprisk.events", 4, 1).unwrap();
    mock.create_topic("chiprisk.scores", 1, 1).unwrap();
    mock.create_topic("chiprisk.dead-letter", 1, 1).unwrap();
    mock
}

/// A mock cluster whose events topic holds [`events`]: the cluster (keep
/// it alive), its bootstrap servers and the events.
async fn cluster_with_events() -> (MockCluster<'static, rdkafka::producer::DefaultProducerContext>, String, Vec<Vec<u8>>)
{
    let mock = cluster();
    let brokers = mock.bootstrap_servers();
    let good = events();
    produce(&brokers, &good).await;
    (mock, brokers, good)
}

async fn produce(brokers: &str, payloads: &[Vec<u8>]) {
    let producer: FutureProducer =
        ClientConfig::new().set("bootstrap.servers", brokers).set("message.timeout.ms", "10000").create().unwrap();
    let keys: Vec<String> = (0..payloads.len()).map(|i| format!("k{i}")).collect();
    let sent = payloads.iter().zip(&keys).map(|(p, key)| {
        producer.send(FutureRecord::to("chiprisk.events").key(key).payload(p.as_slice()), Duration::from_secs(10))
    });
    for delivery in futures_util::future::join_all(sent).await {
        delivery.expect("delivered");
    }
}

/// A consumed record: payload and headers.
type Record = (Vec<u8>, Vec<(String, String)>);

/// Every message of a topic as it stands now, with its headers as
/// (key, value) strings. Reads by assignment (no group), up to the high
/// watermark of each partition.
fn read_all(brokers: &str, topic: &str) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "unused")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).unwrap();
    let mut tpl = TopicPartitionList::new();
    let mut expected = 0;
    for p in metadata.topics()[0].partitions() {
        let (low, high) = consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10)).unwrap();
        expected += (high - low) as usize;
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning).unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while out.len() < expected && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|x| (x.key.to_owned(), String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned()))
                        .collect()
                })
                .unwrap_or_default();
            out.push((m.payload().unwrap_or_default().to_vec(), headers));
        }
    }
    assert_eq!(out.len(), expected, "read all of {topic}");
    out
}

fn events() -> Vec<Vec<u8>> {
    let mut g = chiprisk::synthetic::Generator::new(11);
    let mut v: Vec<Vec<u8>> = (0..300).map(|_| g.event().into_bytes()).collect();
    v.push(br#"{"id":"ban","type":"export_ban","occurred_at":"2025-04-15T00:00:00Z","vendors":["nvidia","amd"],"products":["H20"],"title":"H20 licence requirement"}"#.to_vec());
    v.extend(v[..20].to_vec()); // redelivered by the producer
    v
}

fn poison() -> Vec<Vec<u8>> {
    vec![
        b"{not json".to_vec(),
        b"\xff\xfe".to_vec(),
        br#"{"id":"x","type":"export_ban","occurred_at":"2025-01-01T00:00:00Z","vendors":["tsmc"]}"#.to_vec(),
        br#"{"id":"y","type":"market_signal","occurred_at":"2025-01-01T00:00:00Z","vendors":["amd"]}"#.to_vec(),
        vec![b'{'; 70_000],
    ]
}

/// Scores of the good events through one engine, as `chiprisk replay` computes them.
fn reference(payloads: &[Vec<u8>]) -> Vec<(String, f64)> {
    let catalog = Arc::new(Catalog::default());
    let decoder = Decoder::new(catalog.clone(), Limits::default());
    let mut engine = Engine::new(catalog, ScoringModel::default());
    for p in payloads {
        chiprisk::pipeline::process(&decoder, &mut engine, p);
    }
    let report = ScoresReport::build(&engine, Timestamp::parse_rfc3339(AT).unwrap(), 25, Default::default());
    report.vendors.into_iter().map(|x| (x.vendor, x.score)).collect()
}

async fn scores(app: &TestApp) -> Vec<(String, f64)> {
    let v = app.json(&format!("/api/v1/scores?at={AT}")).await;
    v["vendors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["vendor"].as_str().unwrap().to_owned(), x["score"].as_f64().unwrap()))
        .collect()
}

async fn accepted(app: &TestApp) -> u64 {
    app.json("/api/v1/scores").await["summary"]["accepted"].as_u64().unwrap()
}

/// A counter's or gauge's value in the metrics text, by its series as printed.
fn metric(text: &str, series: &str) -> f64 {
    let line = text.lines().find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '));
    line.unwrap_or_else(|| panic!("{series} not in\n{text}")).rsplit(' ').next().unwrap().parse().unwrap()
}

/// `chiprisk_events_total` summed over types, for one outcome.
fn events_counted(text: &str, outcome: &str) -> f64 {
    let needle = format!("outcome=\"{outcome}\"");
    text.lines()
        .filter(|l| l.starts_with("chiprisk_events_total{") && l.contains(&needle))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_on_kafka_score_like_a_replay_and_poison_is_dead_lettered() {
    let mock = cluster();
    let brokers = mock.bootstrap_servers();
    let good = events();
    let mut all = good.clone();
    for (i, p) in poison().into_iter().enumerate() {
        all.insert(i * 50 + 7, p);
    }
    produce(&brokers, &all).await;

    let app = spawn_with(settings(&brokers, "g1")).await;
    // Ready means caught up: every event is in the scores already.
    assert_eq!(accepted(&app).await, 301);
    assert_eq!(scores(&app).await, reference(&good));

    // Dead letters are acknowledged on their own schedule.
    let acked = "chiprisk_kafka_produced_total{output=\"dead_letter\"} 5";
    wait_until(|| async { app.get("/metrics").await.text().await.unwrap().contains(acked) }).await;
    let dead = read_all(&brokers, "chiprisk.dead-letter");
    assert_eq!(dead.len(), 5, "every poison message is dead-lettered once");
    let reasons: Vec<String> =
        dead.iter().map(|(_, h)| h.iter().find(|(k, _)| k == "chiprisk-reason").unwrap().1.clone()).collect();
    for r in ["malformed_json", "invalid_utf8", "unknown_vendor", "missing_field", "too_large"] {
        assert!(reasons.iter().any(|x| x == r), "{r} missing from {reasons:?}");
    }
    assert!(dead.iter().any(|(p, _)| p == b"{not json"), "original bytes kept");
    assert!(dead[0].1.iter().any(|(k, _)| k == "chiprisk-source-offset"));

    let text = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(metric(&text, "chiprisk_kafka_dead_lettered_total{reason=\"malformed_json\"}"), 1.0);
    assert_eq!(metric(&text, "chiprisk_rebuild_remaining_messages"), 0.0);
    assert_eq!(metric(&text, "chiprisk_rebuild_messages_total"), 0.0, "a first start has no history");
    assert_eq!(events_counted(&text, "accepted"), 301.0);
    assert_eq!(events_counted(&text, "duplicate"), 20.0);
    assert_eq!(metric(&text, "chiprisk_kafka_messages_consumed_total"), all.len() as f64);
    for vendor in ["nvidia", "amd", "intel", "huawei", "cambricon", "metax"] {
        assert!(text.contains(&format!("chiprisk_vendor_risk_score{{vendor=\"{vendor}\"}}")), "{vendor}");
    }
    app.stop().await;
}

/// Produces 40 more synthetic events (from `seed`) while the group has no
/// member, then starts one and checks that, once live, it counts the 301
/// distinct earlier events and the 40 later ones once each and scores them
/// like a replay. Returns the member, the later events and all of them.
async fn restart_after_more_events(
    brokers: &str,
    group: &str,
    earlier: &[Vec<u8>],
    seed: u64,
) -> (TestApp, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut g = chiprisk::synthetic::Generator::new(seed);
    let later: Vec<Vec<u8>> = (0..40).map(|_| g.event().into_bytes()).collect();
    produce(brokers, &later).await;
    let app = spawn_with(settings(brokers, group)).await;
    // Ready means caught up: nothing is waited for beyond readiness.
    let all: Vec<Vec<u8>> = earlier.iter().chain(&later).cloned().collect();
    assert_eq!(scores(&app).await, reference(&all));
    assert_eq!(accepted(&app).await, 341);
    (app, later, all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_rebuilds_history_silently_and_counts_only_what_arrived_since() {
    let mock = cluster();
    let brokers = mock.bootstrap_servers();
    let good = events();
    let mut all = good.clone();
    all.insert(3, b"{not json".to_vec());
    produce(&brokers, &all).await;

    let app = spawn_with(settings(&brokers, "g2")).await;
    let before = scores(&app).await;
    app.stop().await;
    let published = read_all(&brokers, "chiprisk.scores").len();
    assert!(published > 0, "new events publish score updates");
    assert_eq!(read_all(&brokers, "chiprisk.dead-letter").len(), 1);

    // Events that arrive while it is down are new for the restarted replica:
    // none skipped, none counted twice.
    let (again, later, _) = restart_after_more_events(&brokers, "g2", &good, 99).await;
    assert_ne!(scores(&again).await, before, "the later events moved the scores");
    let text = again.get("/metrics").await.text().await.unwrap();
    assert_eq!(events_counted(&text, "accepted"), 40.0, "only what arrived since is traffic");
    assert_eq!(events_counted(&text, "duplicate"), 0.0);
    assert_eq!(metric(&text, "chiprisk_rebuild_messages_total"), all.len() as f64, "history re-read, counted apart");
    assert_eq!(metric(&text, "chiprisk_events_rejected_total{reason=\"malformed_json\"}"), 0.0);
    again.stop().await; // publishes the updates still owed

    // History is neither dead-lettered nor published again.
    assert_eq!(read_all(&brokers, "chiprisk.dead-letter").len(), 1, "no second dead letter after the restart");
    let later_ids: Vec<String> =
        later.iter().map(|e| serde_json::from_slice::<serde_json::Value>(e).unwrap()["id"].to_string()).collect();
    let since_restart = &read_all(&brokers, "chiprisk.scores")[published..];
    assert!(!since_restart.is_empty());
    for (payload, _) in since_restart {
        let u: serde_json::Value = serde_json::from_slice(payload).unwrap();
        assert!(later_ids.contains(&u["event_id"].to_string()), "update from history: {u}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_each_hold_every_vendor_and_agree_with_a_replay() {
    let (_mock, brokers, good) = cluster_with_events().await;
    let a = spawn_with(settings(&brokers, "g-two")).await;
    let b = spawn_with(settings(&brokers, "g-two")).await;
    let expected = reference(&good);
    assert_eq!(expected.len(), 11, "the whole catalog");
    assert_eq!(scores(&a).await, expected);
    assert_eq!(scores(&b).await, expected);
    for app in [&a, &b] {
        assert_eq!(app.get("/api/v1/scores/nvidia").await.status(), 200);
        assert_eq!(accepted(app).await, 301);
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_down_at_start_keeps_it_unready_then_it_recovers_by_itself() {
    let mock = cluster();
    let brokers = mock.bootstrap_servers();
    mock.broker_down(1).unwrap();
    let app = helpers::start(settings(&brokers, "g3")).await;
    let readyz = || async { app.get("/readyz").await.status() };
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(readyz().await, 503, "not ready while the broker is down");
    let api = app.get("/api/v1/scores").await;
    assert_eq!(api.status(), 503);
    let body: serde_json::Value = api.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("rebuilding"), "{body}");
    assert_eq!(app.get("/healthz").await.status(), 200, "alive, not crashed");

    mock.broker_up(1).unwrap();
    let good = events();
    produce(&brokers, &good).await;
    // The API answers only once the replica is ready, and then with every event.
    wait_until(|| async { readyz().await == 200 }).await;
    assert_eq!(accepted(&app).await, 301);
    assert_eq!(scores(&app).await, reference(&good));
    app.stop().await;
}

/// Half the events, a broker outage of `outage`, then the other half: every
/// event is scored once, as a replay scores them. Returns the cluster and
/// the running app for more checks.
async fn across_an_outage(
    group: &str,
    outage: Duration,
    recovery: Duration,
) -> (MockCluster<'static, rdkafka::producer::DefaultProducerContext>, TestApp) {
    let mock = cluster();
    let brokers = mock.bootstrap_servers();
    let good = events();
    let (first, second) = good.split_at(150);
    produce(&brokers, first).await;
    let app = spawn_with(settings(&brokers, group)).await;
    assert_eq!(accepted(&app).await, 150, "ready: caught up");

    mock.broker_down(1).unwrap();
    tokio::time::sleep(outage).await;
    assert_eq!(app.get("/healthz").await.status(), 200, "alive through the outage");
    mock.broker_up(1).unwrap();
    produce(&brokers, second).await;
    // Every message produced has been read (a redelivery after the outage
    // reads some twice): only then can the counts be checked.
    let produced = good.len() as f64;
    let consumed = || async {
        let text = app.get("/metrics").await.text().await.unwrap();
        metric(&text, "chiprisk_kafka_messages_consumed_total") >= produced
    };
    wait_until_within(recovery, consumed).await;
    assert_eq!(scores(&app).await, reference(&good));
    assert_eq!(accepted(&app).await, 301, "each event counted once");
    (mock, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_lost_mid_stream_loses_nothing() {
    let (_mock, app) = across_an_outage("g4", Duration::from_secs(2), Duration::from_secs(30)).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_with_nothing_to_read_becomes_ready() {
    let mock = cluster();
    // spawn_with waits for /readyz: it must turn 200 without any message.
    let app = spawn_with(settings(&mock.bootstrap_servers(), "g5")).await;
    let report = app.json("/api/v1/scores").await;
    let vendors = report["vendors"].as_array().unwrap();
    assert_eq!(vendors.len(), 11, "every vendor, at zero");
    assert!(vendors.iter().all(|v| v["score"] == 0.0), "{report}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(metric(&metrics, "chiprisk_rebuild_remaining_messages"), 0.0);
    assert_eq!(metric(&metrics, "chiprisk_kafka_messages_consumed_total"), 0.0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_network_round_trips_delay_but_lose_nothing() {
    let (mock, brokers, good) = cluster_with_events().await;
    // Every request chiprisk makes now waits 100 ms more.
    mock.broker_round_trip_time(1, Duration::from_millis(100)).unwrap();
    let app = spawn_with(settings(&brokers, "g7")).await;
    assert_eq!(scores(&app).await, reference(&good), "ready: caught up");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_producer_queue_makes_the_loop_wait_not_fail() {
    let mock = cluster();
    let brokers = mock.bootstrap_servers();
    let good = events();
    let mut all = good.clone();
    all.extend(poison());
    produce(&brokers, &all).await;
    let mut s = settings(&brokers, "g8");
    // Room for one record: the dead letters of one batch find the queue full.
    s.kafka.properties.insert("queue_buffering_max_messages".into(), "1".into());
    let app = spawn_with(s).await;
    assert_eq!(scores(&app).await, reference(&good));
    let acked = "chiprisk_kafka_produced_total{output=\"dead_letter\"} 5";
    wait_until(|| async { app.get("/metrics").await.text().await.unwrap().contains(acked) }).await;
    assert_eq!(read_all(&brokers, "chiprisk.dead-letter").len(), 5);
    app.stop().await;
}
