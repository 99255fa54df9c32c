//! The Kafka consumer loop: consume a batch, run each message through the
//! [`Processor`], queue its outputs for delivery, and store the batch's
//! offsets once the broker has acknowledged every record of it and of the
//! batches before it ([`Deliveries`]). Up to [`MAX_IN_FLIGHT`] batches wait
//! for acknowledgements while the next ones are read.
//!
//! # Delivery guarantee
//!
//! At least once, and exactly once in the scores:
//! - `enable.auto.offset.store=false`: an offset is stored only after the
//!   message's effects are done: the scoreboard updated and every record it
//!   caused (routed copies, dead letters, score updates) acknowledged by the
//!   broker (`acks=all`). librdkafka commits stored offsets in the background
//!   (`enable.auto.commit`), on revocation (synchronously, in the rebalance
//!   callback) and on shutdown (within `kafka.drain_timeout_ms`).
//! - A crash between producing and storing means the batch is consumed and
//!   produced again: duplicates, which the engine absorbs by event id.
//! - A failed delivery stops the loop with an error before the offset is
//!   stored; the process exits and, restarted, resumes from the last commit.
//! - Repartition partitions are rebuilt on every assignment by reading them
//!   from the beginning, so that topic needs unlimited retention.

use super::bundle::{self, Bundler};
use super::catch_up_log::CatchUpLog;
use super::client::{
    classify, client_config, client_config_with, Callbacks, Rebalanced, CONSUMER_DEFAULTS, PRODUCER_DEFAULTS,
};
use super::deliveries::{opaque, BatchSeq, Deliveries, DeliveryContext};
use super::processor::{InMessage, Output, Processor};
use super::KafkaSettings;
use crate::app::AppState;
use crate::event::Timestamp;
use crate::telemetry::{KafkaErrorKind, Metrics, ProducedKind};
use anyhow::Context;
use futures_util::FutureExt;
use futures_util::StreamExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, FutureProducer, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::TopicPartitionList;
use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

pub struct KafkaRunner {
    settings: KafkaSettings,
    state: AppState,
}

impl KafkaRunner {
    /// Checks the configuration; connecting happens in [`KafkaRunner::run`],
    /// which retries until the brokers answer.
    pub fn build(settings: &KafkaSettings, state: AppState) -> anyhow::Result<Self> {
        client_config(settings)?;
        Ok(Self { settings: settings.clone(), state })
    }

    /// Runs until `stop` turns true: connect (with backoff), then consume.
    pub async fn run(self, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let mut backoff = Duration::from_millis(500);
        let partitions = loop {
            match self.prepare().await {
                Ok(n) => break n,
                Err(e) => {
                    self.state.metrics().kafka().error(KafkaErrorKind::Admin);
                    tracing::warn!(
                        brokers = ?self.settings.brokers,
                        retry_in_ms = backoff.as_millis() as u64,
                        "Kafka is not reachable or not ready; /readyz stays false until it is: {e:#}"
                    );
                    tokio::select! {
                        _ = stop.changed() => return Ok(()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        };
        self.consume(partitions, stop).await
    }

    /// Creates missing topics (if allowed) and reads the partition count of
    /// the repartition topic.
    async fn prepare(&self) -> anyhow::Result<i32> {
        let s = &self.settings;
        let cfg = client_config(s)?;
        if s.create_topics {
            let admin: AdminClient<DefaultClientContext> = cfg.create().context("Failed to create the admin client")?;
            let replication = || TopicReplication::Fixed(s.replication_factor);
            let mut topics: Vec<NewTopic> =
                s.topics.iter().map(|t| NewTopic::new(t, s.repartition_partitions, replication())).collect();
            topics.push(
                NewTopic::new(&s.repartition_topic, s.repartition_partitions, replication())
                    .set("retention.ms", "-1")
                    .set("retention.bytes", "-1"),
            );
            for t in [&s.output_topic, &s.dead_letter_topic].into_iter().filter(|t| !t.is_empty()) {
                topics.push(NewTopic::new(t, s.repartition_partitions, replication()));
            }
            let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
            for result in admin.create_topics(topics.iter(), &opts).await.context("Failed to create topics")? {
                match result {
                    Ok(t) => tracing::info!(topic = t, "created topic"),
                    Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((t, e)) => anyhow::bail!("cannot create topic {t}: {e}"),
                }
            }
        }
        let producer: FutureProducer = cfg.create().context("Failed to create a client")?;
        let topic = s.repartition_topic.clone();
        let metadata = tokio::task::spawn_blocking(move || {
            producer.client().fetch_metadata(Some(&topic), Duration::from_secs(10))
        })
        .await?
        .context("Failed to fetch metadata")?;
        let t = metadata.topics().first().context("no metadata for the repartition topic")?;
        if t.error().is_some() || t.partitions().is_empty() {
            anyhow::bail!("topic {} is missing (create it, or set kafka.create_topics = true)", s.repartition_topic);
        }
        Ok(t.partitions().len() as i32)
    }

    async fn consume(self, partitions: i32, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let s = &self.settings;
        let metrics = self.state.metrics_arc();
        let (tx, rx) = mpsc::channel();
        let callbacks = Callbacks {
            metrics: metrics.clone(),
            repartition_topic: s.repartition_topic.clone(),
            rebalances: Mutex::new(tx),
        };
        let mut cfg = client_config_with(s, CONSUMER_DEFAULTS)?;
        // The delivery guarantee rests on these: not overridable.
        cfg.set("group.id", &s.group_id)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", s.session_timeout_ms.to_string())
            .set("partition.assignment.strategy", "range");
        let consumer: StreamConsumer<Callbacks> =
            cfg.create_with_context(callbacks).context("Failed to create the Kafka consumer")?;
        let mut pcfg = client_config_with(s, PRODUCER_DEFAULTS)?;
        pcfg.set("acks", "all");
        let deliveries = Deliveries::new(metrics.clone());
        let producer: ThreadedProducer<DeliveryContext> = pcfg
            .create_with_context(DeliveryContext(deliveries.clone()))
            .context("Failed to create the Kafka producer")?;
        let mut topics: Vec<&str> = s.topics.iter().map(String::as_str).collect();
        topics.push(&s.repartition_topic);
        consumer.subscribe(&topics).context("Failed to subscribe")?;
        tracing::info!(topics = ?topics, group = %s.group_id, repartition_partitions = partitions, "consuming");

        let decoder = self.state.decoder().clone();
        let mut processor = Processor::new(decoder, s.repartition_topic.clone(), partitions);
        let mut assigned_once = false;
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        let mut next_batch: BatchSeq = 0;
        let update_interval = Duration::from_millis(s.score_update_interval_ms);
        let mut last_updates = std::time::Instant::now();
        let mut catch_up = CatchUpLog::default();
        let consumer = Arc::new(consumer);
        let mut stream = consumer.stream();
        loop {
            // Wake up now and then even without messages, to take assignment
            // changes and readiness into account.
            // Sooner while a round of score updates is unfinished.
            let idle = if processor.updates_owed() { Duration::from_millis(5) } else { Duration::from_millis(250) };
            let first = tokio::select! {
                _ = stop.changed() => break,
                m = stream.next() => m,
                _ = tokio::time::sleep(idle) => None,
            };
            let read_at = Timestamp::now();
            let mut batch = Vec::with_capacity(s.batch_size);
            batch.extend(first);
            while batch.len() < s.batch_size {
                match stream.next().now_or_never() {
                    Some(Some(m)) => batch.push(m),
                    _ => break,
                }
            }
            // Assignment changes reported by the callbacks run during polling.
            while let Ok(change) = rx.try_recv() {
                assigned_once = true;
                self.rebalanced(&consumer, &mut processor, change).await;
            }

            // Sized for the usual turn (an event has 1.2 routed copies on
            // average), so a large turn does not regrow it as it fills.
            let mut outputs = Vec::with_capacity(batch.len() * 3 / 2);
            let mut done: Vec<(String, i32, i64)> = Vec::new();
            {
                let mut board = self.state.board_write();
                let started = std::time::Instant::now();
                for m in &batch {
                    match m {
                        Ok(msg) => {
                            let repartition = msg.topic() == s.repartition_topic;
                            metrics.kafka().consumed(repartition);
                            let input = InMessage {
                                topic: msg.topic(),
                                partition: msg.partition(),
                                offset: msg.offset(),
                                payload: msg.payload().unwrap_or_default(),
                                timestamp_ms: msg.timestamp().to_millis(),
                                key: msg.key(),
                            };
                            processor.process(&mut board, &metrics, &input, &mut outputs);
                            note_done(&mut done, msg.topic(), msg.partition(), msg.offset());
                        }
                        Err(e) => {
                            metrics.kafka().error(classify(e));
                            tracing::warn!("consume error: {e}");
                        }
                    }
                }
                // One clock reading per batch, not two per message.
                if !batch.is_empty() {
                    metrics.observe_processing_batch(started.elapsed(), batch.len());
                }
                // A round of score updates at most every interval, spread
                // over the loop's turns one vendor at a time, so that scoring
                // a large vendor never holds up the events behind it for long.
                if !processor.updates_owed() && last_updates.elapsed() >= update_interval {
                    processor.start_update_round();
                    last_updates = std::time::Instant::now();
                }
                let slice = std::time::Instant::now();
                while processor.updates_owed() && slice.elapsed() < UPDATE_SLICE {
                    outputs.extend(processor.flush_updates(&board, Timestamp::now(), 1));
                }
                catch_up.note(&processor, &board);
            }
            // The turn's effects are visible from here on (the board is unlocked).
            processor.observe_latencies(&metrics, read_at, Timestamp::now());
            // Deliveries are awaited in the background: the next batch is read
            // while this one's records travel; offsets are stored in batch order
            // once every record of the batch (and of the batches before) is acked.
            let seq = next_batch;
            next_batch += 1;
            let sent = self.send(&producer, &deliveries, seq, outputs).await?;
            // A turn that read and sent nothing has nothing to wait for.
            if sent > 0 || !done.is_empty() {
                in_flight.push_back(InFlight { seq, done });
            }
            retire(&consumer, &mut in_flight, &deliveries, MAX_IN_FLIGHT).await?;
            metrics.kafka().set_catching_up(processor.catching_up());
            self.state.set_live(assigned_once && processor.catching_up() == 0);
        }

        drop(stream);
        // Score updates still owed for events already applied.
        processor.start_update_round();
        let owed = processor.flush_updates(&self.state.board_write(), Timestamp::now(), usize::MAX);
        self.send(&producer, &deliveries, next_batch, owed).await?;
        in_flight.push_back(InFlight { seq: next_batch, done: Vec::new() });
        tracing::info!(batches_in_flight = in_flight.len(), "draining: waiting for deliveries, then committing");
        let drain = Duration::from_millis(s.drain_timeout_ms);
        match tokio::time::timeout(drain, retire(&consumer, &mut in_flight, &deliveries, 0)).await {
            Ok(result) => result?,
            Err(_) => {
                tracing::warn!("deliveries did not finish within kafka.drain_timeout_ms; their events will be redone")
            }
        }
        let commit = tokio::task::spawn_blocking(move || {
            let r = consumer.commit_consumer_state(CommitMode::Sync);
            drop(consumer);
            r
        });
        match tokio::time::timeout(drain, commit).await {
            Ok(Ok(Ok(()))) => tracing::info!("offsets committed"),
            Ok(Ok(Err(e))) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => {}
            Ok(Ok(Err(e))) => tracing::warn!("final commit failed: {e}"),
            _ => tracing::warn!("final commit did not finish within kafka.drain_timeout_ms"),
        }
        let _ = producer.flush(drain);
        Ok(())
    }

    async fn rebalanced(&self, consumer: &StreamConsumer<Callbacks>, processor: &mut Processor, change: Rebalanced) {
        let repartition = self.settings.repartition_topic.clone();
        match change {
            Rebalanced::Assigned(parts) => {
                let mine: Vec<i32> = parts.iter().filter(|(t, _)| *t == repartition).map(|(_, p)| *p).collect();
                let mut tpl = TopicPartitionList::new();
                for p in &mine {
                    tpl.add_partition(&repartition, *p);
                }
                let committed = if mine.is_empty() {
                    TopicPartitionList::new()
                } else {
                    consumer.committed_offsets(tpl, Duration::from_secs(10)).unwrap_or_else(|e| {
                        tracing::warn!("cannot read committed offsets, treating partitions as new: {e}");
                        TopicPartitionList::new()
                    })
                };
                let mut board = self.state.board_write();
                for p in mine {
                    let until =
                        committed.find_partition(&repartition, p).and_then(|e| e.offset().to_raw()).filter(|o| *o >= 0);
                    processor.assign(&mut board, p, until);
                    tracing::info!(partition = p, catch_up_to = ?until, "rebuilding partition state");
                }
                self.state.metrics().kafka().clear_lag();
            }
            Rebalanced::Revoked(parts) => {
                let mut board = self.state.board_write();
                for (_, p) in parts.iter().filter(|(t, _)| *t == repartition) {
                    processor.revoke(&mut board, *p);
                }
            }
        }
    }

    /// The topic an output goes to; `None` if that output is turned off.
    fn destination(&self, output: &Output<'_>) -> Option<&str> {
        let s = &self.settings;
        let topic = match output {
            Output::Route { .. } => &s.repartition_topic,
            Output::DeadLetter { .. } => &s.dead_letter_topic,
            Output::ScoreUpdate { .. } => &s.output_topic,
        };
        Some(topic.as_str()).filter(|t| !t.is_empty())
    }

    /// Routed copies into bundles (unless `kafka.repartition_bundle_bytes`
    /// is 0), and the outputs left to send one by one.
    fn bundle<'a>(&self, outputs: Vec<Output<'a>>) -> (Vec<(i32, Vec<u8>)>, Vec<Output<'a>>) {
        let max_bytes = self.settings.repartition_bundle_bytes;
        if max_bytes == 0 {
            return (Vec::new(), outputs);
        }
        let mut bundler = Bundler::new(max_bytes);
        let mut rest = Vec::new();
        for o in outputs {
            match o {
                Output::Route { partition, payload, timestamp_ms, key } => {
                    let (key, len) = key.encode();
                    bundler.push(partition, bundle::Entry { key: &key[..len], timestamp_ms, payload });
                }
                other => rest.push(other),
            }
        }
        (bundler.finish(), rest)
    }

    /// Hands every output of batch `seq` to the producer; returns how many
    /// records [`Deliveries`] now expects for it.
    async fn send(
        &self,
        producer: &ThreadedProducer<DeliveryContext>,
        deliveries: &Deliveries,
        seq: BatchSeq,
        outputs: Vec<Output<'_>>,
    ) -> anyhow::Result<usize> {
        let metrics = self.state.metrics();
        let (bundles, outputs) = self.bundle(outputs);
        let records = bundles.len() + outputs.iter().filter(|o| self.destination(o).is_some()).count();
        deliveries.expect(seq, records);
        for (partition, value) in &bundles {
            let record = BaseRecord::with_opaque_to(&self.settings.repartition_topic, opaque(seq, ProducedKind::Route))
                .key(bundle::KEY)
                .payload(&value[..])
                .partition(*partition);
            produce(producer, metrics, record).await?;
        }
        for o in &outputs {
            if let Output::DeadLetter { reason, .. } = o {
                metrics.kafka().dead_lettered(*reason);
            }
            let Some(topic) = self.destination(o) else { continue };
            match o {
                Output::Route { partition, payload, timestamp_ms, key } => {
                    let (key, len) = key.encode();
                    let mut record = BaseRecord::with_opaque_to(topic, opaque(seq, ProducedKind::Route))
                        .key(&key[..len])
                        .payload(*payload)
                        .partition(*partition);
                    record.timestamp = *timestamp_ms;
                    produce(producer, metrics, record).await?
                }
                Output::DeadLetter { payload, reason, message, topic: source, partition, offset } => {
                    let headers = OwnedHeaders::new()
                        .insert(Header { key: "chiprisk-reason", value: Some(reason.as_str()) })
                        .insert(Header { key: "chiprisk-error", value: Some(message.as_str()) })
                        .insert(Header { key: "chiprisk-source-topic", value: Some(*source) })
                        .insert(Header { key: "chiprisk-source-partition", value: Some(&partition.to_string()) })
                        .insert(Header { key: "chiprisk-source-offset", value: Some(&offset.to_string()) });
                    let key = format!("{source}/{partition}/{offset}");
                    let record = BaseRecord::with_opaque_to(topic, opaque(seq, ProducedKind::DeadLetter))
                        .key(key.as_bytes())
                        .payload(*payload)
                        .headers(headers);
                    produce(producer, metrics, record).await?
                }
                Output::ScoreUpdate { key, payload } => {
                    let record = BaseRecord::with_opaque_to(topic, opaque(seq, ProducedKind::ScoreUpdate))
                        .key(key.as_bytes())
                        .payload(&payload[..]);
                    produce(producer, metrics, record).await?
                }
            }
        }
        Ok(records)
    }
}

/// Hands a record to librdkafka; while its queue is full
/// (`queue.buffering.max.messages`), waits for deliveries to make room.
/// Any other refusal is counted and is an error.
async fn produce(
    producer: &ThreadedProducer<DeliveryContext>,
    metrics: &Metrics,
    mut record: BaseRecord<'_, [u8], [u8], usize>,
) -> anyhow::Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((e, _)) => {
                metrics.kafka().error(KafkaErrorKind::Produce);
                anyhow::bail!("cannot queue a record for delivery: {e}");
            }
        }
    }
}

/// How many batches may wait for acknowledgements at once. At low rates a
/// batch is a few messages, and the broker's acknowledgement can take tens
/// of milliseconds, so this is generous; at high rates batches are large and
/// memory stays bounded by `kafka.batch_size` times this.
const MAX_IN_FLIGHT: usize = 64;

/// Most time one turn of the loop spends scoring vendors for score updates
/// (at least one vendor per turn); the rest of a round waits for the next turns.
const UPDATE_SLICE: Duration = Duration::from_millis(2);

/// A processed batch whose records are being delivered.
struct InFlight {
    seq: BatchSeq,
    /// (topic, partition, last offset) of its messages, stored once all is acked.
    done: Vec<(String, i32, i64)>,
}

/// Records that a message was processed: only the last offset per partition
/// of a batch needs storing, and a batch holds few partitions.
fn note_done(done: &mut Vec<(String, i32, i64)>, topic: &str, partition: i32, offset: i64) {
    match done.iter_mut().rev().find(|(t, p, _)| *p == partition && t == topic) {
        Some(entry) => entry.2 = entry.2.max(offset),
        None => done.push((topic.to_owned(), partition, offset)),
    }
}

/// Stores the offsets of the oldest batches whose records are all
/// acknowledged, in order. Waits while more than `max_waiting` batches are
/// in flight. A failed delivery is an error: the offsets stay unstored.
async fn retire(
    consumer: &StreamConsumer<Callbacks>,
    in_flight: &mut VecDeque<InFlight>,
    deliveries: &Deliveries,
    max_waiting: usize,
) -> anyhow::Result<()> {
    while let Some(front) = in_flight.front() {
        if !deliveries.finished(front.seq)? {
            if in_flight.len() > max_waiting {
                deliveries.changed().await;
                continue;
            }
            return Ok(());
        }
        let batch = in_flight.pop_front().expect("front exists");
        for (topic, partition, offset) in batch.done {
            // librdkafka stores `offset + 1`, the next offset to read. Fails
            // only for partitions revoked meanwhile: their new owner redoes
            // the work from the last commit.
            let _ = consumer.store_offset(&topic, partition, offset);
        }
    }
    Ok(())
}
