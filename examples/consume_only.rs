//! Baselines for the Kafka benchmarks: a plain rdkafka consumer that does
//! nothing but read.
//!
//! `consume_only BROKERS TOPIC N` reads N messages from the beginning and
//! prints the rate (the throughput baseline), with librdkafka's defaults.
//! `consume_only BROKERS TOPIC N chiprisk` does the same with the consumer
//! settings chiprisk uses by default (`kafka::CONSUMER_DEFAULTS`):
//! against a broker that holds fetches for the full `fetch.wait.max.ms`,
//! as Tansu does, the defaults' 500 ms wait bounds this loop, not the
//! reading (BENCHMARKS.md §4).
//! `consume_only BROKERS TOPIC N latency` reads the next N messages from the
//! end, with chiprisk's fetch settings, and prints the quantiles of each
//! message's age when read (its Kafka timestamp to now): what the broker and
//! the producer alone add, against which chiprisk's two hops compare.
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (brokers, topic, n) = (&args[1], &args[2], args[3].parse::<usize>().expect("N"));
    let latency = args.get(4).is_some_and(|a| a == "latency");
    let chiprisk_settings = args.get(4).is_some_and(|a| a == "chiprisk");
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
    if chiprisk_settings {
        for (k, v) in chiprisk::kafka::CONSUMER_DEFAULTS {
            config.set(*k, *v);
        }
    }
    let consumer: BaseConsumer = config.create().expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut seen = 0;
    let mut bytes = 0;
    let mut ages_ms = Vec::with_capacity(if latency { n } else { 0 });
    let mut last_read = Instant::now();
    while seen < n {
        // Measuring latency, stop once the stream has been quiet for 5 s.
        if latency && seen > 0 && last_read.elapsed() > Duration::from_secs(5) {
            break;
        }
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            last_read = Instant::now();
            if latency {
                let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis() as i64;
                ages_ms.push(m.timestamp().to_millis().map_or(0, |t| (now_ms - t).max(0)));
            }
            bytes += m.payload().map_or(0, <[u8]>::len);
            seen += 1;
        }
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
        "{{\"messages\": {seen}, \"bytes\": {bytes}, \"seconds\": {secs:.3}, \"per_second\": {:.0}}}",
        seen as f64 / secs
    );
}
