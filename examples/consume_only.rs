//! Baselines for the Kafka benchmark (benches/kafka/bench.py).
//!
//! `consume_only BROKERS TOPIC N [score]` reads N messages from the
//! beginning of every partition of TOPIC, as chiprisk does (assigned, no
//! group membership, chiprisk's fetch settings), and prints the rate. With
//! `score`, it also decodes, validates and applies every message to a
//! scoring engine on its one thread: a scorer with no outputs, no offsets,
//! no HTTP and no shared state, the floor under any design of the pipeline.
use chiprisk::engine::{Applied, Engine, ScoringModel};
use chiprisk::event::{Decoder, Limits};
use chiprisk::pipeline::Outcome;
use chiprisk::Catalog;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::Message;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (brokers, topic, n) = (&args[1], &args[2], args[3].parse::<usize>().expect("N"));
    let score = args.get(4).is_some_and(|m| m == "score");
    let started = Instant::now();
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers).set("group.id", "consume-only").set("enable.auto.commit", "false");
    // chiprisk's fetch settings; its statistics feed its readiness, which a
    // plain reader has no use for.
    for (k, v) in chiprisk::kafka::CONSUMER_DEFAULTS.iter().filter(|(k, _)| *k != "statistics.interval.ms") {
        config.set(*k, *v);
    }
    let consumer: BaseConsumer = config.create().expect("consumer");
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10)).expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for p in metadata.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning).expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let catalog = Arc::new(Catalog::default());
    let decoder = Decoder::new(catalog.clone(), Limits::default());
    let mut engine = Engine::new(catalog, ScoringModel::default());
    let (mut seen, mut bytes, mut accepted) = (0, 0, 0);
    while seen < n {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let payload = m.payload().unwrap_or_default();
            if score {
                let outcome = chiprisk::pipeline::process(&decoder, &mut engine, payload);
                accepted += usize::from(matches!(outcome, Outcome::Applied { applied: Applied::Accepted, .. }));
            }
            bytes += payload.len();
            seen += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"messages\": {seen}, \"accepted\": {accepted}, \"bytes\": {bytes}, \"seconds\": {secs:.3}, \"per_second\": {:.0}}}",
        seen as f64 / secs
    );
}
