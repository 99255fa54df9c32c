//! The Kafka loop, shaped like rdkafka's at-least-once example: read a
//! batch, run each message through the [`Processor`], hand its outputs to
//! the producer, await their acknowledgements, then store the batch's
//! offsets.
//!
//! # Invariant
//!
//! **An offset is stored only after every effect of the messages before it
//! is done**: the board updated, and every record they caused (dead letters,
//! score updates) acknowledged by the broker (`acks=all`). librdkafka
//! commits stored offsets in the background (`enable.auto.commit`) and the
//! loop commits once more on shutdown. So:
//! - The committed offset is a line below which every message's outputs
//!   were produced: a restarted replica re-reads what lies below it
//!   silently ([`Arrival::History`]), and nothing is dead-lettered or
//!   published twice for it.
//! - A crash between producing and storing redoes the batch: its outputs
//!   are produced again (at least once), and its events are counted once in
//!   the scores, because the engine ignores an event id it has seen.
//! - A failed delivery stops the loop with an error before the offset is
//!   stored; the process exits and, restarted, resumes from the last commit.
//!
//! Every replica reads every partition from its beginning (`assign`, no
//! group membership) and holds the whole scoreboard. Replicas share the
//! group's committed offsets, which only say how far outputs were produced.

use super::client::{classify, client_config_with, Callbacks, CONSUMER_DEFAULTS, PRODUCER_DEFAULTS};
use super::positions::Positions;
use super::processor::{dead_letter_payload, InMessage, Output, Processor};
use super::{topics, KafkaSettings};
use crate::event::{Decoder, Timestamp};
use crate::pipeline::Arrival;
use crate::state::Writer;
use crate::telemetry::{KafkaErrorKind, Metrics, ProducedKind};
use anyhow::Context;
use futures_util::{FutureExt, StreamExt};
use rdkafka::consumer::{CommitMode, Consumer, MessageStream, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long the loop waits for a message before it looks around anyway
/// (readiness, score updates, lag).
const IDLE: Duration = Duration::from_millis(100);

/// How often the rebuild's progress is logged while it lasts.
const PROGRESS_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// Room left in a dead letter's record for its key, headers and framing.
const DEAD_LETTER_FRAMING: usize = 16 * 1024;

pub struct KafkaSource {
    settings: KafkaSettings,
}

type Consumer_ = StreamConsumer<Callbacks>;
type Producer_ = FutureProducer<Callbacks>;

impl KafkaSource {
    /// Checks the configuration; connecting happens in [`KafkaSource::run`],
    /// which retries until the brokers answer.
    pub fn build(settings: &KafkaSettings) -> anyhow::Result<Self> {
        client_config_with(settings, &[])?;
        Ok(Self { settings: settings.clone() })
    }

    /// Runs until `stop` turns true: connect (with backoff), rebuild, then
    /// follow the event topics.
    pub async fn run(self, decoder: Decoder, state: Writer, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let Some(partitions) = self.connect(state.metrics(), &mut stop).await? else { return Ok(()) };
        let s = &self.settings;
        let metrics = state.metrics_arc();
        let consumer: Arc<Consumer_> = Arc::new(
            consumer_config(s)?
                .create_with_context(Callbacks::new(metrics.clone(), "consumer"))
                .context("Failed to create the Kafka consumer")?,
        );
        let mut producer_config = client_config_with(s, PRODUCER_DEFAULTS)?;
        producer_config.set("acks", "all");
        let producer: Producer_ = producer_config
            .create_with_context(Callbacks::new(metrics, "producer"))
            .context("Failed to create the Kafka producer")?;
        let result = async {
            let positions = start_positions(&consumer, partitions).await?;
            tracing::info!(
                topics = ?s.topics,
                partitions = positions.partitions().count(),
                history_offsets = positions.history_offsets(),
                "reading every partition from the beginning; ready once caught up"
            );
            let (began, logged) = (Instant::now(), Instant::now());
            Loop { settings: s, state: &state, consumer: &consumer, producer: &producer, positions, began, logged }
                .run(Processor::new(decoder), stop)
                .await
        }
        .await;
        let drain = Duration::from_millis(s.drain_timeout_ms);
        // Dropping the clients blocks (librdkafka closes them): not on a tokio worker.
        tokio::task::spawn_blocking(move || {
            if result.is_ok() {
                commit(&consumer);
            }
            let _ = rdkafka::producer::Producer::flush(&producer, drain);
            drop(consumer);
            drop(producer);
            result
        })
        .await
        .context("closing the Kafka clients")?
    }

    /// Prepares the topics ([`topics::prepare`]), retrying with backoff
    /// while the brokers cannot be reached or a topic is missing. An event
    /// topic that deletes history is fatal. `None`: told to stop meanwhile.
    async fn connect(
        &self,
        metrics: &Metrics,
        stop: &mut watch::Receiver<bool>,
    ) -> anyhow::Result<Option<Vec<(String, i32)>>> {
        let mut backoff = Duration::from_millis(500);
        loop {
            match topics::prepare(&self.settings).await {
                Ok(partitions) => return Ok(Some(partitions)),
                Err(e) if e.is::<topics::HistoryLoss>() => return Err(e),
                Err(e) => {
                    metrics.kafka().error(KafkaErrorKind::Admin);
                    tracing::warn!(
                        brokers = ?self.settings.brokers,
                        retry_in_ms = backoff.as_millis() as u64,
                        "Kafka is not reachable or not ready; /readyz stays 503 until it is: {e:#}"
                    );
                    tokio::select! {
                        _ = stop.changed() => return Ok(None),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

/// The consumer's configuration: chiprisk's defaults, the user's
/// properties, then what the invariant rests on (not overridable).
fn consumer_config(s: &KafkaSettings) -> anyhow::Result<rdkafka::ClientConfig> {
    let mut cfg = client_config_with(s, CONSUMER_DEFAULTS)?;
    cfg.set("group.id", &s.group_id)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest");
    Ok(cfg)
}

/// Reads the group's committed offsets (the line between history and new)
/// and assigns every partition from its beginning.
async fn start_positions(consumer: &Arc<Consumer_>, partitions: Vec<(String, i32)>) -> anyhow::Result<Positions> {
    let mut asked = TopicPartitionList::new();
    let mut from_start = TopicPartitionList::new();
    for (topic, partition) in &partitions {
        asked.add_partition(topic, *partition);
        from_start.add_partition_offset(topic, *partition, Offset::Beginning)?;
    }
    let c = consumer.clone();
    // Both wait on librdkafka (the broker, its threads): not on a tokio worker.
    let committed = tokio::task::spawn_blocking(move || -> anyhow::Result<TopicPartitionList> {
        let committed = c
            .committed_offsets(asked, Duration::from_secs(30))
            .context("Failed to read the group's committed offsets")?;
        c.assign(&from_start).context("Failed to assign the event partitions")?;
        Ok(committed)
    })
    .await??;
    Ok(Positions::new(partitions.into_iter().map(|(topic, partition)| {
        let offset = committed.find_partition(&topic, partition).and_then(|e| e.offset().to_raw()).filter(|o| *o >= 0);
        (topic, partition, offset)
    })))
}

/// The loop's parts, borrowed for its lifetime.
struct Loop<'a> {
    settings: &'a KafkaSettings,
    state: &'a Writer,
    consumer: &'a Arc<Consumer_>,
    producer: &'a Producer_,
    positions: Positions,
    /// When the rebuild began, and when its progress was last logged: a long
    /// history takes a while, and an operator watching a pod that is not
    /// ready wants to know how far it is.
    began: Instant,
    logged: Instant,
}

impl Loop<'_> {
    async fn run(mut self, mut processor: Processor, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
        let consumer = self.consumer.clone();
        let mut stream = consumer.stream();
        let interval = Duration::from_millis(self.settings.score_update_interval_ms);
        let mut last_round = Instant::now();
        loop {
            let Some(batch) = next_batch(&mut stream, &mut stop, self.settings.batch_size).await else { break };
            let (mut outputs, done) = self.apply(&mut processor, &batch);
            processor.observe_latencies(self.state.metrics(), Timestamp::now());
            self.look_around();
            if self.state.is_ready() && processor.updates_owed() && last_round.elapsed() >= interval {
                last_round = Instant::now();
                outputs.extend(processor.score_updates(&self.state.board_read().engine, Timestamp::now()));
            }
            self.deliver(outputs).await?;
            self.store(&done);
        }
        drop(stream);
        // Score updates still owed for events already applied.
        if self.state.is_ready() {
            let owed = processor.score_updates(&self.state.board_read().engine, Timestamp::now());
            let drain = Duration::from_millis(self.settings.drain_timeout_ms);
            if tokio::time::timeout(drain, self.deliver(owed)).await.is_err() {
                tracing::warn!("score updates not delivered within kafka.drain_timeout_ms");
            }
        }
        Ok(())
    }

    /// The step over a batch, under one write lock: returns the records to
    /// produce and the last new offset read per partition.
    fn apply<'m>(
        &mut self,
        processor: &mut Processor,
        batch: &'m [KafkaResult<BorrowedMessage<'_>>],
    ) -> (Vec<Output<'m>>, Vec<(&'m str, i32, i64)>) {
        let metrics = self.state.metrics();
        let mut outputs = Vec::new();
        let mut done: Vec<(&str, i32, i64)> = Vec::new();
        let mut board = self.state.board();
        let started = Instant::now();
        let mut read = 0;
        for m in batch {
            let msg = match m {
                Ok(msg) => msg,
                Err(e) => {
                    metrics.kafka().error(classify(e));
                    tracing::warn!("consume error: {e}");
                    continue;
                }
            };
            read += 1;
            let arrival = self.positions.read(msg.topic(), msg.partition(), msg.offset());
            let input = InMessage {
                topic: msg.topic(),
                partition: msg.partition(),
                offset: msg.offset(),
                payload: msg.payload().unwrap_or_default(),
                timestamp_ms: msg.timestamp().to_millis(),
            };
            processor.process(&mut board, metrics, &input, arrival, &mut outputs);
            if arrival == Arrival::New {
                match done.iter_mut().find(|(t, p, _)| *p == msg.partition() && *t == msg.topic()) {
                    Some(entry) => entry.2 = msg.offset(),
                    None => done.push((msg.topic(), msg.partition(), msg.offset())),
                }
            }
        }
        drop(board);
        if read > 0 {
            metrics.kafka().consumed(read);
            metrics.observe_processing_batch(started.elapsed(), read as usize);
        }
        (outputs, done)
    }

    /// Takes the broker's latest report of each log and sets the lag; goes
    /// ready once every partition is caught up, and meanwhile reports (and
    /// every [`PROGRESS_LOG_INTERVAL`] logs) how far the rebuild is.
    fn look_around(&mut self) {
        for end in self.consumer.client().context().ends() {
            self.positions.note_log(&end.topic, end.partition, end.low, end.high);
        }
        let (state, positions) = (self.state, &self.positions);
        for (topic, partition, lag) in positions.lags() {
            state.metrics().kafka().set_lag(topic, partition, lag);
        }
        if state.is_ready() {
            return;
        }
        let seconds = self.began.elapsed().as_secs_f64();
        if positions.caught_up() {
            state.set_ready();
            let s = state.summary();
            let (accepted, duplicates, rejected) = (s.accepted, s.duplicates, s.rejected);
            let history = positions.history_read();
            tracing::info!(seconds, history, accepted, duplicates, rejected, "caught up with the event log; ready");
            return;
        }
        let (read, left) = (positions.messages_read(), positions.left());
        state.set_progress(read, left);
        if self.logged.elapsed() >= PROGRESS_LOG_INTERVAL {
            self.logged = Instant::now();
            let events_held = state.board_read().engine.stats().accepted;
            tracing::info!(
                messages_read = read,
                messages_left = left,
                events_held,
                seconds,
                "rebuilding from the event log"
            );
        }
    }

    /// Hands every output to the producer and waits for each to be
    /// acknowledged. A record the broker refuses is an error: the batch's
    /// offsets stay unstored and the process exits.
    async fn deliver(&self, outputs: Vec<Output<'_>>) -> anyhow::Result<()> {
        let s = self.settings;
        let metrics = self.state.metrics();
        let mut pending: Vec<(ProducedKind, DeliveryFuture)> = Vec::with_capacity(outputs.len());
        for output in &outputs {
            match output {
                Output::DeadLetter { payload, reason, message, topic, partition, offset } => {
                    metrics.kafka().dead_lettered(*reason);
                    if s.dead_letter_topic.is_empty() {
                        continue;
                    }
                    let (payload, cut) = dead_letter_payload(payload, s.largest_record() - DEAD_LETTER_FRAMING);
                    let (partition_text, offset_text) = (partition.to_string(), offset.to_string());
                    let mut headers = OwnedHeaders::new()
                        .insert(Header { key: "chiprisk-reason", value: Some(reason.as_str()) })
                        .insert(Header { key: "chiprisk-error", value: Some(message.as_str()) })
                        .insert(Header { key: "chiprisk-source-topic", value: Some(*topic) })
                        .insert(Header { key: "chiprisk-source-partition", value: Some(&partition_text) })
                        .insert(Header { key: "chiprisk-source-offset", value: Some(&offset_text) });
                    if let Some(len) = cut {
                        headers =
                            headers.insert(Header { key: "chiprisk-original-bytes", value: Some(&len.to_string()) });
                    }
                    let key = format!("{topic}/{partition}/{offset}");
                    let record =
                        FutureRecord::to(&s.dead_letter_topic).key(key.as_str()).payload(payload).headers(headers);
                    pending.push((ProducedKind::DeadLetter, enqueue(self.producer, metrics, record).await?));
                }
                Output::ScoreUpdate { key, payload } => {
                    if s.output_topic.is_empty() {
                        continue;
                    }
                    let record = FutureRecord::to(&s.output_topic).key(key.as_str()).payload(&payload[..]);
                    pending.push((ProducedKind::ScoreUpdate, enqueue(self.producer, metrics, record).await?));
                }
            }
        }
        for (kind, delivery) in pending {
            match delivery.await {
                Ok(Ok(_)) => metrics.kafka().produced(kind),
                Ok(Err((e, _))) => {
                    metrics.kafka().error(KafkaErrorKind::Produce);
                    anyhow::bail!("a {} record was not delivered: {e}; stopping before storing offsets", kind.as_str());
                }
                Err(_) => anyhow::bail!("the producer stopped before a {} record was delivered", kind.as_str()),
            }
        }
        Ok(())
    }

    /// Stores each partition's last new message (librdkafka commits the
    /// offset after it, the next to read). History is never stored: its
    /// offsets lie below what is committed already.
    fn store(&self, done: &[(&str, i32, i64)]) {
        for (topic, partition, offset) in done {
            // rd_kafka_offset_store stores `offset + 1`.
            if let Err(e) = self.consumer.store_offset(topic, *partition, *offset) {
                tracing::warn!(topic, partition, "cannot store an offset: {e}");
            }
        }
    }
}

/// The next batch: waits up to [`IDLE`] for a first message, then takes
/// what is already there, up to `max`. `None`: told to stop.
async fn next_batch<'c>(
    stream: &mut MessageStream<'c, Callbacks>,
    stop: &mut watch::Receiver<bool>,
    max: usize,
) -> Option<Vec<KafkaResult<BorrowedMessage<'c>>>> {
    let first = tokio::select! {
        _ = stop.changed() => return None,
        m = stream.next() => m,
        _ = tokio::time::sleep(IDLE) => None,
    };
    let mut batch = Vec::with_capacity(if first.is_some() { max.min(256) } else { 0 });
    batch.extend(first);
    while !batch.is_empty() && batch.len() < max {
        match stream.next().now_or_never() {
            Some(Some(m)) => batch.push(m),
            _ => break,
        }
    }
    Some(batch)
}

/// Hands a record to librdkafka; while its queue is full, waits for
/// deliveries to make room. Any other refusal is counted and is an error.
async fn enqueue(
    producer: &Producer_,
    metrics: &Metrics,
    mut record: FutureRecord<'_, str, [u8]>,
) -> anyhow::Result<DeliveryFuture> {
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
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

/// Commits the stored offsets (blocking: call it off the tokio workers).
fn commit(consumer: &Consumer_) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => tracing::info!("offsets committed"),
        Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => {}
        Err(e) => tracing::warn!("final commit failed: {e}"),
    }
}
