//! The one path from JSON lines to outcomes, shared by `run` (the bundled
//! history, a followed file), `replay`, `validate`, `backfill` and
//! `publish`: a source splits and numbers the lines, and a [`Sink`] (in the
//! spirit of ripgrep's) runs the step on each and decides what its outcome
//! means: applied to the board and logged, printed on stderr, or sent.

use super::lines::{Line, LineSplitter};
use crate::event::Rejection;
use crate::pipeline::{self, Outcome};
use std::io::{self, Read};

/// Where a source's lines go.
pub trait Sink {
    /// The step for one line within the size limit: decode, then apply
    /// (or check, or send). Returns the outcome, counted.
    fn event(&mut self, bytes: &[u8]) -> Outcome;

    /// A line over the size limit, rejected with `rejection` without being
    /// read: counts it. Returns the outcome.
    fn too_long(&mut self, rejection: Rejection) -> Outcome;

    /// Reports a rejected line, by its number (from 1; blank lines count).
    fn rejected(&mut self, line_no: u64, rejection: &Rejection);
}

/// Every line of `input` into `sink`, lines over `limit` bytes rejected
/// unread. Stops at the first read error.
pub fn ingest(input: &mut dyn Read, limit: usize, sink: &mut impl Sink) -> io::Result<()> {
    let mut splitter = LineSplitter::new(limit);
    let mut on_line = |line_no: u64, line: Line<'_>| deliver(sink, limit, line_no, line);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => splitter.push(&buf[..n], &mut on_line),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    splitter.finish(&mut on_line);
    Ok(())
}

/// [`ingest`] for input already in memory (the bundled history, a file
/// read whole): the lines are split from it in place, not copied.
pub fn ingest_bytes(input: &[u8], limit: usize, sink: &mut impl Sink) {
    let mut splitter = LineSplitter::new(limit);
    let mut on_line = |line_no: u64, line: Line<'_>| deliver(sink, limit, line_no, line);
    splitter.push(input, &mut on_line);
    splitter.finish(&mut on_line);
}

/// One line into `sink`: its outcome, and a rejection reported.
pub(super) fn deliver(sink: &mut impl Sink, limit: usize, line_no: u64, line: Line<'_>) {
    let outcome = match line {
        Line::Text(bytes) => sink.event(bytes),
        Line::TooLong(len) => sink.too_long(pipeline::too_large(len, limit)),
    };
    if let Outcome::Rejected(r) = &outcome {
        sink.rejected(line_no, r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Applied;
    use crate::event::{EventType, RejectReason};

    /// Accepts "ok" lines and rejects the rest; records what it is told.
    #[derive(Default)]
    struct Recorder {
        events: Vec<String>,
        too_long: usize,
        rejected: Vec<(u64, RejectReason)>,
    }

    impl Sink for Recorder {
        fn event(&mut self, bytes: &[u8]) -> Outcome {
            self.events.push(String::from_utf8_lossy(bytes).into_owned());
            match bytes {
                b"ok" => Outcome::Applied { kind: EventType::ExportBan, applied: Applied::Accepted },
                _ => Outcome::Rejected(Rejection::new(RejectReason::MalformedJson, "not ok")),
            }
        }

        fn too_long(&mut self, rejection: Rejection) -> Outcome {
            self.too_long += 1;
            Outcome::Rejected(rejection)
        }

        fn rejected(&mut self, line_no: u64, rejection: &Rejection) {
            self.rejected.push((line_no, rejection.reason));
        }
    }

    #[test]
    fn every_line_reaches_the_sink_and_each_rejection_is_reported_by_its_line_number() {
        let input = format!("ok\n\nbad\n{}\nok", "x".repeat(40));
        let mut sink = Recorder::default();
        ingest(&mut input.as_bytes(), 32, &mut sink).unwrap();
        assert_eq!(sink.events, ["ok", "bad", "ok"], "blank lines skipped, the last line without its end kept");
        assert_eq!(sink.too_long, 1);
        assert_eq!(sink.rejected, [(3, RejectReason::MalformedJson), (4, RejectReason::TooLarge)]);
        let mut whole = Recorder::default();
        ingest_bytes(input.as_bytes(), 32, &mut whole);
        assert_eq!((whole.events, whole.too_long, whole.rejected), (sink.events, sink.too_long, sink.rejected));
    }
}
