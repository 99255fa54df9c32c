//! Baselines for the Kafka benchmarks: a plain rdkafka consumer that does
//! nothing but read, and the least any scorer must do on top of reading.
//!
//! `consume_only BROKERS TOPIC N` reads N messages from the beginning and
//! prints the rate (the throughput baseline), with librdkafka's defaults.
//! `consume_only BROKERS TOPIC N chiprisk` does the same with the consumer
//! settings chiprisk uses by default (`kafka::CONSUMER_DEFAULTS`):
//! against a broker that holds fetches for the full `fetch.wait.max.ms`,
//! as Tansu does, the defaults' 500 ms wait bounds this loop, not the
//! reading (BENCHMARKS.md §4).
//! `consume_only BROKERS TOPIC N score` reads with chiprisk's settings and
//! decodes, validates and applies every message to a scoring engine in the
//! polling thread: a scorer with no outputs, no offsets and no durable
//! state, the floor under any design of the pipeline.
//! `consume_only BROKERS TOPIC N score-threaded` does the same with the
//! work split over two threads: one polls and copies the payloads out in
//! batches of 2,000, the other decodes, validates and applies them.
//! `consume_only BROKERS TOPIC N latency` reads the next N messages from the
//! end, with chiprisk's fetch settings, and prints the quantiles of each
//! message's age when read (its Kafka timestamp to now): what the broker and
//! the producer alone add, against which chiprisk's two hops compare.
use chiprisk::engine::{Engine, ScoringModel};
use chiprisk::event::{Decoder, Limits};
use chiprisk::Catalog;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BATCH: usize = 2000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (brokers, topic, n) = (&args[1], &args[2], args[3].parse::<usize>().expect("N"));
    let mode = args.get(4).map_or("", String::as_str);
    let latency = mode == "latency";
    let started = Instant::now();
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("consume-only-{}", std::process::id()))
        .set("auto.offset.reset", if latency { "latest" } else { "earliest" })
        .set("enable.auto.commit", "false");
    if latency {
        config.set("fetch.wait.max.ms", "10");
    }
    if matches!(mode, "chiprisk" | "score" | "score-threaded") {
        for (k, v) in chiprisk::kafka::CONSUMER_DEFAULTS {
            config.set(*k, *v);
        }
    }
    let consumer: BaseConsumer = config.create().expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let (decoder, mut engine) = scorer();
    let (mut seen, mut bytes, mut accepted) = (0, 0, 0);
    let mut ages_ms = Vec::with_capacity(if latency { n } else { 0 });
    let mut last_read = Instant::now();
    let threaded = (mode == "score-threaded").then(|| {
        let (tx, rx) = mpsc::sync_channel::<Vec<Vec<u8>>>(4);
        let worker = std::thread::spawn(move || {
            let (decoder, mut engine) = scorer();
            let mut accepted = 0;
            for batch in rx {
                for payload in &batch {
                    accepted += usize::from(applied(&decoder, &mut engine, payload));
                }
            }
            accepted
        });
        (tx, worker)
    });
    let mut batch = Vec::with_capacity(BATCH);
    while seen < n {
        // Measuring latency, stop once the stream has been quiet for 5 s.
        if latency && seen > 0 && last_read.elapsed() > Duration::from_secs(5) {
            break;
        }
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            last_read = Instant::now();
            let payload = m.payload().unwrap_or_default();
            match mode {
                "latency" => {
                    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis() as i64;
                    ages_ms.push(m.timestamp().to_millis().map_or(0, |t| (now_ms - t).max(0)));
                }
                "score" => accepted += usize::from(applied(&decoder, &mut engine, payload)),
                "score-threaded" => {
                    batch.push(payload.to_vec());
                    if batch.len() == BATCH || seen + 1 == n {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        threaded.as_ref().expect("threaded").0.send(full).expect("scorer alive");
                    }
                }
                _ => {}
            }
            bytes += payload.len();
            seen += 1;
        }
    }
    if let Some((tx, worker)) = threaded {
        drop(tx);
        accepted = worker.join().expect("scorer");
    }
    if latency {
        ages_ms.sort_unstable();
        let q = |p: f64| ages_ms[((ages_ms.len() as f64 * p) as usize).min(ages_ms.len() - 1)];
        println!(
            "{{\"messages\": {seen}, \"age_ms_p50\": {}, \"age_ms_p99\": {}, \"age_ms_max\": {}}}",
            q(0.5),
            q(0.99),
            ages_ms[ages_ms.len() - 1]
        );
        return;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"messages\": {seen}, \"accepted\": {accepted}, \"bytes\": {bytes}, \"seconds\": {secs:.3}, \"per_second\": {:.0}}}",
        seen as f64 / secs
    );
}

fn scorer() -> (Decoder, Engine) {
    let catalog = Arc::new(Catalog::default());
    (Decoder::new(catalog.clone(), Limits::default()), Engine::new(catalog, ScoringModel::default()))
}

/// Decodes, validates and applies one message; true if it was a new event.
fn applied(decoder: &Decoder, engine: &mut Engine, payload: &[u8]) -> bool {
    matches!(
        chiprisk::pipeline::process(decoder, engine, payload),
        chiprisk::pipeline::Outcome::Applied { applied: chiprisk::engine::Applied::Accepted, .. }
    )
}
