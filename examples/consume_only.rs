//! The baseline for the Kafka throughput benchmark: a plain rdkafka consumer
//! that reads N messages of a topic from the beginning and does nothing else.
//! `cargo run --release --example consume_only -- BROKERS TOPIC N`
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::Message;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (brokers, topic, n) = (&args[1], &args[2], args[3].parse::<usize>().expect("N"));
    let started = Instant::now();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("consume-only-{}", std::process::id()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut seen = 0;
    let mut bytes = 0;
    while seen < n {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            bytes += m.payload().map_or(0, <[u8]>::len);
            seen += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"messages\": {seen}, \"bytes\": {bytes}, \"seconds\": {secs:.3}, \"per_second\": {:.0}}}",
        seen as f64 / secs
    );
}
