//! Where events come from: JSON-lines files (read once or followed), and
//! the one path from lines to outcomes that every line reader shares.
//!
//! - [`lines`]: splits bytes into lines, holding at most one line's limit.
//! - [`ingest`]: lines into a [`Sink`], which runs the step on each and
//!   decides what its outcome means.
//! - [`file`]: follows a file for appended lines.
//! - [`local`]: the service's line sources (the bundled history, a file).

pub mod file;
pub mod ingest;
pub mod lines;
pub mod local;

pub use file::FileFollower;
pub use ingest::{ingest, ingest_bytes, Sink};
pub use lines::{Line, LineSplitter};
pub use local::{LineSource, EMBEDDED_EVENTS};
