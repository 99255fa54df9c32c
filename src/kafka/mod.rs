//! The Kafka shell: read every partition of the event topics, score, and
//! publish dead letters and score updates.
//!
//! - [`backpressure`]: a producer's wait while librdkafka's queue is full.
//! - [`topics`]: the topics exist and the event topics keep every event.
//! - [`positions`]: where the loop stands in each partition: rebuilding or
//!   new, caught up or not (no I/O).
//! - [`processor`]: the per-message step (no I/O).
//! - [`runner`]: the loop, and its delivery guarantee: at least once into
//!   Kafka, exactly once in the scores.
//!
//! The design, for those who change it: `docs/kafka.md`.

pub mod backpressure;
mod client;
mod delivery;
pub mod positions;
pub mod processor;
pub mod runner;
mod stats;
pub mod topics;

pub use client::{client_config, CONSUMER_DEFAULTS};
pub use runner::run;
