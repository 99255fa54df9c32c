//! chiprisk: China-market risk scores for AI chip vendors, from a stream of
//! policy and market events.
//!
//! - [`catalog`]: the closed set of vendors that can be scored.
//! - [`event`]: event schema v1; bytes become validated [`Event`]s here, once.
//! - [`engine`]: the pure scoring core (no I/O): apply events, score as of a
//!   time, explain a score.
//! - [`pipeline`]: the one step every source runs per message.
//! - [`state`]: the scoreboard behind its lock: a write handle for the event
//!   source, a read handle for HTTP and telemetry.
//! - [`source`], [`kafka`]: where events come from (a file, Kafka).
//! - [`http`], [`telemetry`], [`cli`]: the shells.
//! - [`shutdown`]: the one stop signal every loop of the service takes.
//! - [`app`]: builds the pieces from [`config::Settings`] and runs them.
#![forbid(unsafe_code)]
// No function over 60 lines (clippy.toml) outside tests: a longer one is
// named steps waiting to be split.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

pub mod app;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod engine;
pub mod event;
pub mod http;
pub mod kafka;
pub mod pipeline;
pub mod report;
pub mod shutdown;
pub mod source;
pub mod state;
pub mod synthetic;
pub mod telemetry;

pub use catalog::{Catalog, Vendor, VendorId};
pub use event::{Decoder, Event, Rejection};
pub use shutdown::{signal as shutdown_signal, Shutdown};
