//! Baseline for the publish benchmark (benches/kafka/publish.py).
//!
//! `produce_plain BROKERS TOPIC FILE` sends every line of FILE to TOPIC
//! as it is, unvalidated and unkeyed, with the producer settings `chiprisk
//! publish` uses (idempotent, acks=all, linger.ms=5), waits for every
//! acknowledgement and prints the rate as JSON.
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (brokers, topic, file) = (&args[1], &args[2], &args[3]);
    let started = Instant::now();
    let input = std::fs::read(file).expect("the input file");
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    let mut sent = 0u64;
    for line in input.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(line);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, _)) => panic!("{e}"),
            }
        }
        sent += 1;
    }
    producer.flush(Duration::from_secs(120)).expect("every record acknowledged");
    let seconds = started.elapsed().as_secs_f64();
    println!("{{\"sent\": {sent}, \"seconds\": {seconds:.3}, \"per_second\": {:.0}}}", sent as f64 / seconds);
}
