//! The service's line sources: the bundled history, or a file followed for
//! appended lines. The lines there at start rebuild the board, which then
//! goes ready; lines appended later (a file) arrive as new events until the
//! service stops. Reading files blocks, so a line source runs on a blocking
//! thread and learns of the stop through its [`Shutdown`].

use super::file::FileFollower;
use super::ingest::{self, Sink};
use crate::event::{Decoder, Rejection};
use crate::pipeline::{self, Arrival, Outcome};
use crate::shutdown::Shutdown;
use crate::state::Writer;
use anyhow::Context;
use std::time::{Duration, Instant};

/// The bundled history `chiprisk run` serves when given no event file:
/// real, sourced policy and market events since 2019.
pub const EMBEDDED_EVENTS: &str = include_str!("../../data/history.jsonl");

/// The most bytes read from the event file at a time (each line is then
/// decoded, and applied under the write lock, one at a time).
const BATCH_BYTES: usize = 1 << 20;

/// Where the service's lines come from.
pub enum LineSource {
    /// [`EMBEDDED_EVENTS`]: read once, at start.
    Embedded,
    /// A file, read from its start, then polled every `poll` for appended
    /// lines.
    File { follower: FileFollower, poll: Duration },
}

impl LineSource {
    /// Reads the source on a blocking thread, then serves on until the
    /// service stops: a line source ends only then (the bundled history is
    /// read at once, and the service goes on serving it).
    pub async fn run(self, decoder: Decoder, state: Writer, mut shutdown: Shutdown) -> anyhow::Result<()> {
        let stop = shutdown.clone();
        tokio::task::spawn_blocking(move || match self {
            Self::Embedded => load_embedded(&decoder, &state),
            Self::File { follower, poll } => follow(follower, poll, &decoder, &state, stop),
        })
        .await
        .context("the line source's thread panicked")?;
        shutdown.recv().await;
        Ok(())
    }
}

/// Reads the bundled history as a rebuild, then goes ready.
fn load_embedded(decoder: &Decoder, state: &Writer) {
    let mut sink = BoardSink { decoder, state, origin: "embedded", arrival: Arrival::Rebuild };
    // Reading from memory cannot fail.
    ingest::ingest_bytes(EMBEDDED_EVENTS.as_bytes(), decoder.limits().max_event_bytes, &mut sink);
    state.set_ready();
    tracing::info!(
        events = state.summary().accepted,
        "loaded the bundled history, data/history.jsonl (no source.file given)"
    );
}

/// Reads the file to its end as a rebuild, goes ready, then reads what is
/// appended every `poll` until told to stop.
fn follow(mut follower: FileFollower, poll: Duration, decoder: &Decoder, state: &Writer, mut shutdown: Shutdown) {
    let origin = follower.path().display().to_string();
    let limit = decoder.limits().max_event_bytes;
    tracing::info!(path = %origin, "reading events");
    loop {
        let arrival = if state.is_ready() { Arrival::New } else { Arrival::Rebuild };
        let mut sink = BoardSink { decoder, state, origin: &origin, arrival };
        match follower.poll(BATCH_BYTES, &mut |n, line| ingest::deliver(&mut sink, limit, n, line)) {
            Ok(0) => {}
            Ok(_) => continue,
            Err(e) => tracing::error!(path = %origin, "cannot read the event file: {e:#}"),
        }
        if !state.is_ready() {
            state.set_ready();
            let s = state.summary();
            tracing::info!(path = %origin, accepted = s.accepted, duplicates = s.duplicates, rejected = s.rejected, "event file read; following it for new lines");
        }
        if shutdown.wait_blocking(poll) {
            return;
        }
    }
}

/// The service's sink: each line decoded without the board's lock, then
/// applied and counted under the write lock, held only for that (readers
/// wait only for the engine's update); rejections logged.
struct BoardSink<'a> {
    decoder: &'a Decoder,
    state: &'a Writer,
    /// The source's name in the logs: `embedded`, or the file's path.
    origin: &'a str,
    arrival: Arrival,
}

impl Sink for BoardSink<'_> {
    fn event(&mut self, bytes: &[u8]) -> Outcome {
        let metrics = self.state.metrics();
        // Processing time counts decoding and applying.
        let started = Instant::now();
        let decoded = self.decoder.decode(bytes);
        let mut board = self.state.board();
        let outcome = pipeline::apply(&mut board.engine, decoded);
        metrics.observe_processing(started.elapsed());
        pipeline::count(&mut board.summary, metrics, &outcome, self.arrival);
        outcome
    }

    fn too_long(&mut self, rejection: Rejection) -> Outcome {
        let outcome = Outcome::Rejected(rejection);
        pipeline::count(&mut self.state.board().summary, self.state.metrics(), &outcome, self.arrival);
        outcome
    }

    fn rejected(&mut self, line_no: u64, r: &Rejection) {
        tracing::warn!(source = self.origin, line = line_no, reason = %r.reason, "rejected event: {}", r.message);
    }
}
