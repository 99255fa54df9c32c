//! chiprisk: China-market risk scores for AI chip vendors, from a stream of
//! policy and market events.
//!
//! - [`catalog`]: the closed set of vendors that can be scored.
//! - [`event`]: event schema v1; bytes become validated [`Event`]s here, once.
//! - [`engine`]: the pure scoring core (no I/O): apply events, score as of a
//!   time, explain a score.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod engine;
pub mod event;

pub use catalog::{Catalog, Vendor, VendorId};
pub use event::{Decoder, Event, Rejection};
