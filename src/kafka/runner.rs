//! The Kafka loop, shaped like rdkafka's at-least-once example: read a
//! batch, run each message through the [`Processor`], hand its outputs to
//! the producer, await their acknowledgements, then store the offsets.
//!
//! # Invariant
//!
//! **An offset is stored only after every effect of the messages before it
//! is done**: the board updated, and every record they caused (dead letters,
//! and the score updates of the vendors they changed, which wait for the
//! next round) acknowledged by the broker (`acks=all`). librdkafka
//! commits stored offsets in the background (`enable.auto.commit`) and the
//! loop commits once more on shutdown. So:
//! - The committed offset is a line below which every message's outputs
//!   were produced: a restarted replica re-reads what lies below it
//!   silently ([`Arrival::Rebuild`]), and nothing is dead-lettered or
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

use super::client::{
    classify, client_config_with, Callbacks, EventConsumer, CONSUMER_DEFAULTS, PRODUCER_DEFAULTS,
    STATISTICS_INTERVAL_MS,
};
use super::delivery::{self, Producer};
use super::positions::Positions;
use super::processor::{InMessage, Output, Processor};
use super::topics;
use crate::config::KafkaSettings;
use crate::event::{Decoder, Timestamp};
use crate::pipeline::Arrival;
use crate::shutdown::Shutdown;
use crate::state::Writer;
use crate::telemetry::{KafkaErrorKind, Metrics};
use anyhow::Context;
use futures_util::{FutureExt, StreamExt};
use rdkafka::consumer::{CommitMode, Consumer as _, MessageStream};
use rdkafka::error::{KafkaResult, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::Producer as _;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the loop waits for a message before it looks around anyway
/// (readiness, score updates, lag).
const IDLE: Duration = Duration::from_millis(100);

/// Most messages of a batch decoded before they are applied: what is held
/// decoded at once (an event naming 256 products holds about 6 KiB).
const DECODE_CHUNK: usize = 64;

/// How often the rebuild's progress is logged while it lasts.
const PROGRESS_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// Runs until told to stop (`stop`): prepare the topics and positions
/// (retrying while Kafka is not ready), rebuild, then follow the event
/// topics. An event topic that deletes history is an error.
pub async fn run(settings: KafkaSettings, decoder: Decoder, state: Writer, mut stop: Shutdown) -> anyhow::Result<()> {
    let s = &settings;
    let metrics = state.metrics_arc();
    // The silence of the brokers is measured from here until they first answer.
    metrics.kafka().fetched_at(Timestamp::now().as_unix_seconds());
    let (consumer, producer) = clients(s, metrics.clone()).await?;
    let result = async {
        let prepare = || topics::prepare(s, &consumer);
        let Some(partitions) = retrying(&metrics, &mut stop, prepare).await? else { return Ok(()) };
        let start = || start_positions(&consumer, &s.group_id, partitions.clone());
        let Some(positions) = retrying(&metrics, &mut stop, start).await? else { return Ok(()) };
        tracing::info!(
            topics = ?s.topics,
            partitions = partitions.len(),
            history_offsets = positions.rebuild_offsets(),
            "reading every partition from the beginning; ready once caught up"
        );
        let (began, logged, held) = (Instant::now(), Instant::now(), Vec::new());
        let (settings, state, consumer, producer) = (s, &state, &consumer, &producer);
        let on = Loop { settings, state, consumer, producer, positions, began, logged, held };
        on.run(Processor::new(decoder), stop).await
    }
    .await;
    let drain = s.drain_timeout_ms;
    // Committing and closing wait on librdkafka: not on a tokio worker.
    tokio::task::spawn_blocking(move || {
        if result.is_ok() {
            commit(&consumer);
        }
        let _ = producer.flush(drain);
        drop(consumer);
        drop(producer);
        result
    })
    .await
    .context("closing the Kafka clients")?
}

/// Runs `attempt` until it succeeds, with exponential backoff (0.5 s to
/// 30 s) while Kafka is unreachable or not ready; each failure is counted
/// and logged. An event topic that deletes history is not retried. `None`:
/// told to stop meanwhile.
async fn retrying<T, F: Future<Output = anyhow::Result<T>>>(
    metrics: &Metrics,
    stop: &mut Shutdown,
    mut attempt: impl FnMut() -> F,
) -> anyhow::Result<Option<T>> {
    let mut backoff = Duration::from_millis(500);
    loop {
        let outcome = tokio::select! {
            () = stop.recv() => return Ok(None),
            outcome = attempt() => outcome,
        };
        match outcome {
            Ok(value) => return Ok(Some(value)),
            Err(e) if e.is::<topics::HistoryLoss>() => return Err(e),
            Err(e) => {
                metrics.kafka().error(KafkaErrorKind::Admin);
                let retry_in_ms = backoff.as_millis() as u64;
                tracing::warn!(
                    retry_in_ms,
                    "Kafka is not reachable or not ready; /readyz stays 503 until it is: {e:#}"
                );
                tokio::select! {
                    () = stop.recv() => return Ok(None),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// The consumer and the producer. Created (and, on failure, dropped) off
/// the tokio workers: closing a librdkafka client waits for its threads.
async fn clients(s: &KafkaSettings, metrics: Arc<Metrics>) -> anyhow::Result<(Arc<EventConsumer>, Producer)> {
    let mut consumer_config = client_config_with(s, CONSUMER_DEFAULTS)?;
    // What the invariant and readiness rest on: not overridable.
    consumer_config
        .set("group.id", &s.group_id)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
    let mut producer_config = client_config_with(s, PRODUCER_DEFAULTS)?;
    producer_config.set("acks", "all");
    tokio::task::spawn_blocking(move || {
        let consumer: EventConsumer = consumer_config
            .create_with_context(Callbacks::new(metrics.clone(), "consumer"))
            .context("Failed to create the Kafka consumer")?;
        let producer: Producer = producer_config
            .create_with_context(Callbacks::new(metrics, "producer"))
            .context("Failed to create the Kafka producer")?;
        Ok((Arc::new(consumer), producer))
    })
    .await?
}

/// Reads the group's committed offsets (the line between history and new)
/// and assigns every partition from its beginning.
async fn start_positions(
    consumer: &Arc<EventConsumer>,
    group: &str,
    partitions: Vec<(String, i32)>,
) -> anyhow::Result<Positions> {
    let mut asked = TopicPartitionList::new();
    let mut from_start = TopicPartitionList::new();
    for (topic, partition) in &partitions {
        asked.add_partition(topic, *partition);
        from_start.add_partition_offset(topic, *partition, Offset::Beginning)?;
    }
    let c = consumer.clone();
    let group = group.to_owned();
    // Both wait on librdkafka (the broker, its threads): not on a tokio worker.
    let committed = tokio::task::spawn_blocking(move || -> anyhow::Result<TopicPartitionList> {
        let failed = || format!("Failed to read the committed offsets of consumer group {group} (kafka.group_id)");
        let committed = c.committed_offsets(asked, Duration::from_secs(30)).with_context(failed)?;
        for e in committed.elements() {
            e.error().with_context(|| format!("{}: {}/{}", failed(), e.topic(), e.partition()))?;
        }
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
    consumer: &'a Arc<EventConsumer>,
    producer: &'a Producer,
    positions: Positions,
    /// When the rebuild began, and when its progress was last logged: a long
    /// history takes a while, and an operator watching a pod that is not
    /// ready wants to know how far it is.
    began: Instant,
    logged: Instant,
    /// The last new offset read per partition, stored once the batch's
    /// outputs are delivered; held while the replica is not ready, since
    /// the score updates its events owe wait for readiness.
    held: Vec<(String, i32, i64)>,
}

impl Loop<'_> {
    async fn run(mut self, mut processor: Processor, mut stop: Shutdown) -> anyhow::Result<()> {
        let (s, metrics) = (self.settings, self.state.metrics());
        let consumer = self.consumer.clone();
        let mut stream = consumer.stream();
        while let Some(batch) = next_batch(&mut stream, &mut stop, s.batch_size).await {
            let mut outputs = self.apply(&mut processor, &batch);
            processor.observe_latencies(metrics, Timestamp::now());
            self.look_around();
            // A partial board publishes nothing: the vendors touched before
            // the replica is ready are published by the first batch after.
            let ready = self.state.is_ready();
            // Most batches change no vendor (duplicates, idle turns): no lock, no clock.
            if ready && processor.updates_owed() {
                outputs.extend(processor.score_updates(&self.state.board_read().engine, Timestamp::now()));
            }
            tokio::select! {
                delivered = delivery::deliver(self.producer, s, metrics, outputs) => delivered?,
                // Stopping mid-delivery: nothing more is stored; redone at the next start.
                () = stop.recv() => return Ok(()),
            }
            if ready {
                self.store_held();
            }
        }
        Ok(())
    }

    /// The step over a batch, [`DECODE_CHUNK`] messages at a time: decoded
    /// without the board's lock, then applied under the write lock, in
    /// order. Returns the records to produce, and holds the last new offset
    /// read per partition. Decoded events borrow the batch's payloads; their
    /// own allocations (products, escaped strings) live until their chunk
    /// is applied.
    fn apply<'m>(
        &mut self,
        processor: &mut Processor,
        batch: &'m [KafkaResult<BorrowedMessage<'_>>],
    ) -> Vec<Output<'m>> {
        let metrics = self.state.metrics();
        let started = Instant::now();
        let mut read = 0;
        let mut newest_ms = None;
        let mut outputs = Vec::new();
        let mut decoded = Vec::with_capacity(batch.len().min(DECODE_CHUNK));
        for chunk in batch.chunks(DECODE_CHUNK) {
            // Decoded first, without the board's write lock: readers (the
            // API, scrapes) wait only while the decoded events are applied.
            for m in chunk {
                let msg = match m {
                    Ok(msg) => msg,
                    Err(e) => {
                        metrics.kafka().error(classify(e));
                        tracing::warn!("consume error: {e}");
                        continue;
                    }
                };
                read += 1;
                let (topic, partition, offset) = (msg.topic(), msg.partition(), msg.offset());
                let arrival = self.positions.read(topic, partition, offset);
                let input = InMessage {
                    topic,
                    partition,
                    offset,
                    payload: msg.payload().unwrap_or_default(),
                    timestamp_ms: msg.timestamp().to_millis(),
                };
                newest_ms = newest_ms.max(input.timestamp_ms);
                let event = processor.decode(&input);
                decoded.push((input, arrival, event));
            }
            let mut board = self.state.board();
            for (input, arrival, event) in decoded.drain(..) {
                let (topic, partition, offset) = (input.topic, input.partition, input.offset);
                processor.apply(&mut board, metrics, &input, event, arrival, &mut outputs);
                if arrival == Arrival::New {
                    match self.held.iter_mut().find(|(t, p, _)| *p == partition && t == topic) {
                        Some(entry) => entry.2 = offset,
                        None => self.held.push((topic.to_owned(), partition, offset)),
                    }
                }
            }
        }
        if read > 0 {
            metrics.kafka().consumed(read);
            metrics.kafka().message_timestamp(newest_ms);
            metrics.observe_processing_batch(started.elapsed(), read as usize);
        }
        outputs
    }

    /// Takes the broker's latest report of each log and sets the lag; goes
    /// ready once every partition is caught up, and meanwhile reports (and
    /// every [`PROGRESS_LOG_INTERVAL`] logs) how far the rebuild is.
    fn look_around(&mut self) {
        for (topic, partition, report) in self.consumer.client().context().ends() {
            self.positions.note_log(&topic, partition, &report);
        }
        let (state, positions) = (self.state, &self.positions);
        let mut level = true;
        for (topic, partition, lag) in positions.lags() {
            state.metrics().kafka().set_lag(topic, partition, lag);
            level &= lag == 0;
        }
        if state.is_ready() {
            if level {
                state.metrics().kafka().caught_up_at(Timestamp::now().as_unix_seconds());
            }
            return;
        }
        let seconds = self.began.elapsed().as_secs_f64();
        if positions.caught_up() {
            state.metrics().kafka().caught_up_at(Timestamp::now().as_unix_seconds());
            state.set_ready();
            let s = state.summary();
            let (accepted, duplicates, rejected) = (s.accepted, s.duplicates, s.rejected);
            let history = positions.rebuilt();
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

    /// Stores each held partition's last new message (librdkafka commits
    /// the offset after it, the next to read). History is never stored: its
    /// offsets lie below what is committed already.
    fn store_held(&mut self) {
        for (topic, partition, offset) in self.held.drain(..) {
            // rd_kafka_offset_store stores `offset + 1`.
            if let Err(e) = self.consumer.store_offset(&topic, partition, offset) {
                tracing::warn!(topic, partition, "cannot store an offset: {e}");
            }
        }
    }
}

/// The next batch: waits up to [`IDLE`] for a first message, then takes
/// what is already there, up to `max`. `None`: told to stop.
async fn next_batch<'c>(
    stream: &mut MessageStream<'c, Callbacks>,
    stop: &mut Shutdown,
    max: usize,
) -> Option<Vec<KafkaResult<BorrowedMessage<'c>>>> {
    let first = tokio::select! {
        () = stop.recv() => return None,
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

/// Commits the stored offsets (blocking: call it off the tokio workers).
fn commit(consumer: &EventConsumer) {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => tracing::info!("offsets committed"),
        Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => {}
        Err(e) => tracing::warn!("final commit failed: {e}"),
    }
}
